"""What validation leaves for operators: every batch's Great Expectations result as JSON, and
once per refresh the Data Docs site (HTML) built from them.

Under ``<data dir>/validation/``::

    results/refresh-<run time>/<view>-<batch>.json   one per validated batch, passed or failed
    data_docs/index.html                             GE's site: a page per result, newest first

``<run time>`` is the refresh's ``created_at`` (every row it wrote carries it), in GE's run-time
format; ``<batch>`` is the batch's first post and a hash of all its posts. The result files are
themselves the validation-results store of the context that builds the site (a filesystem store
whose file layout is the one above), so the site needs no second copy of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smp_platform.validation.runner import ValidationReport

log = logging.getLogger(__name__)

RUN_NAME = "refresh"
# GE's result key is (suite, run name, run time, batch): the suite is the view's name.
_RESULT_TEMPLATE = "{1}-{2}/{0}-{3}.json"
# The index page lists the newest results only; older pages stay on the site. 1,000 is about
# 20 nightly refreshes of 3,000 posts, and keeps the index build under a second.
INDEX_RESULTS_LIMIT = 1000
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_docs_lock = threading.Lock()


def validation_dir(root: Path) -> Path:
    return Path(root) / "validation"


def results_dir(root: Path) -> Path:
    return validation_dir(root) / "results"


def data_docs_index(root: Path) -> Path:
    return validation_dir(root) / "data_docs" / "index.html"


def run_time(created_at: datetime) -> str:
    """A refresh's run time as GE writes it (``20250101T020000.000000Z``)."""
    return created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def run_results_dir(root: Path, created_at: datetime) -> Path:
    """The folder of one refresh's results (``created_at`` is the refresh's, shared by all of
    its batches, wherever they ran)."""
    return results_dir(root) / f"{RUN_NAME}-{run_time(created_at)}"


def batch_identifier(post_ids: Sequence[str]) -> str:
    """A batch's name in file names: its first post (letters, digits, _ only: the layout's
    separators are ``-`` and ``/``) and a hash of all its posts, so two batches never share one."""
    ids = [str(p) for p in post_ids]
    first = _UNSAFE.sub("_", ids[0])[:40] if ids else "empty"
    digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()[:8]
    return f"{first}_{digest}"


def keep_results(
    root: Path, created_at: datetime, post_ids: Sequence[str], reports: Sequence[ValidationReport]
) -> list[Path]:
    """Write each report's GE result to the refresh's folder, by atomic rename: a process
    killed mid-write leaves no half file for the site to trip over, and a retried batch
    overwrites its own file."""
    folder = run_results_dir(root, created_at)
    folder.mkdir(parents=True, exist_ok=True)
    batch = batch_identifier(post_ids)
    written = []
    for report in reports:
        if report.result is None:
            continue
        path = folder / f"{report.view_name}-{batch}.json"
        partial = folder / f".partial-{uuid.uuid4().hex}"  # matches no result file name
        partial.write_text(json.dumps(report.result), encoding="utf-8")
        os.replace(partial, path)
        written.append(path)
    return written


def run_results(root: Path, created_at: datetime) -> list[Path]:
    """The result files one refresh kept, by name."""
    return sorted(run_results_dir(root, created_at).glob("*.json"))


def build_data_docs(root: Path, created_at: datetime) -> Path | None:
    """Render the pages of one refresh's results and the index; the index's path, or None when
    the refresh kept no result. Once per refresh, not per batch: a page takes ~35 ms, and the
    index reads up to :data:`INDEX_RESULTS_LIMIT` results."""
    if not run_results(root, created_at):
        return None
    with _docs_context(root) as context:
        wanted = run_time(created_at)
        keys = [
            key
            for key in context.validation_results_store.list_keys()
            if key.run_id.run_name == RUN_NAME and key.run_id.to_tuple()[1] == wanted
        ]
        context.build_data_docs(resource_identifiers=keys)
    return data_docs_index(root)


@contextmanager
def _docs_context(root: Path) -> Iterator[Any]:
    """An ephemeral GE context whose results store is ``results/`` and whose site is
    ``data_docs/``. GE renders through its current project, so the context is that project
    while the site is built and the one before (the batches' validation context) after."""
    import great_expectations as gx
    from great_expectations.data_context.data_context.context_factory import project_manager
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.exceptions import DataContextRequiredError

    defaults = InMemoryStoreBackendDefaults()
    stores = dict(defaults.stores)
    stores[defaults.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(results_dir(root)),
            "filepath_template": _RESULT_TEMPLATE,
            "filepath_suffix": None,  # the template names the suffix
        },
    }
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(data_docs_index(root).parent),
        },
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": INDEX_RESULTS_LIMIT,
        },
        # Suites are built per process from the views (validation/suites.py), not stored: the
        # site shows results only.
        "site_section_builders": {"expectations": "0", "profiling": "0"},
    }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        stores=stores,
        data_docs_sites={"local_site": site},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    with _docs_lock:
        try:
            previous = project_manager.get_current_project()
        except DataContextRequiredError:
            previous = None
        try:
            yield gx.get_context(mode="ephemeral", project_config=config)
        finally:
            project_manager.set_project(previous)
