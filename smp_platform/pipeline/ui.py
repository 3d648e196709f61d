"""The ui verb: Feast's web UI over this data dir's feature store (views, feature services,
entities and data sources, with the groups' descriptions and tags).

``feast ui`` reads the repo rendered under ``<data dir>/feast/`` (:meth:`FeatureStoreGateway.
render`) and its registry; this verb makes both current, then becomes ``feast ui`` on
127.0.0.1. The UI only reads: like ``smp serve``, it runs without the writer lock.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from smp_platform.core.config import Settings
from smp_platform.core.errors import DataDirBusy, UserError
from smp_platform.core.locking import writer_lock
from smp_platform.infra.feast_store import FeatureStoreGateway

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # the UI has no authentication: by default never on an outside address
UI_WARNINGS = "ignore::Warning:feast.ui_server"


def ui_url(port: int, host: str = HOST) -> str:
    return f"http://{host}:{port}/"


def prepare_repo(settings: Settings) -> Path:
    """The rendered repo, its registry applied when the definitions changed (under the writer
    lock, briefly). A data dir held by a writer is shown as last applied: a refresh applies
    the definitions itself when it starts, and the UI must not wait for it to end."""
    gateway = FeatureStoreGateway(settings)
    try:
        with writer_lock(settings.root, "ui", timeout_s=0):
            gateway.apply()  # a no-op unless the definitions changed; renders the repo
    except DataDirBusy:
        log.warning("data dir in use by a writer: the UI shows the registry as last applied")
        gateway.render()
    return settings.feast_dir


def feast_ui_command(feast_dir: Path, port: int, host: str = HOST) -> list[str]:
    """``feast -c <repo> ui`` on ``host`` (127.0.0.1), with the ``feast`` of this environment."""
    beside = Path(sys.executable).with_name("feast")
    feast = str(beside) if beside.exists() else shutil.which("feast")
    if feast is None:
        raise UserError("no `feast` command in this environment: install smp-platform again")
    return [feast, "-c", str(feast_dir), "ui", "--host", host, "--port", str(port)]


def exec_feast_ui(settings: Settings, port: int, host: str = HOST) -> None:
    """Replace this process by ``feast ui``: Ctrl-C and SIGTERM then reach the server itself,
    and no child is left behind when this process is stopped."""
    command = feast_ui_command(prepare_repo(settings), port, host)
    # Feast's UI server starts with a FastAPI deprecation notice no user can act on.
    quiet = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), UI_WARNINGS]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, {**os.environ, "PYTHONWARNINGS": quiet})
