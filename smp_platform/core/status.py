"""What the batch verbs leave for the service and the operator: small JSON files under
``<data dir>/status/`` (light to read: no warehouse, no MLflow on the request path).

- ``online.json``: the last check of the online store against the offline store (per view:
  posts offline, online, missing) and a sample of post ids the service checks live;
- ``refresh.json``: when the last refresh finished, whether it succeeded, when the last one
  that succeeded finished, and the share of drifted features it measured.

Each file is replaced atomically: a reader sees the old one or the new one, never half.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

STATUS_DIR = "status"
ONLINE = "online.json"
REFRESH = "refresh.json"


def status_path(root: Path, name: str) -> Path:
    return Path(root) / STATUS_DIR / name


def read_status(root: Path, name: str) -> dict[str, Any]:
    """The file's object, or {} when there is none yet (or it cannot be read)."""
    try:
        value = json.loads(status_path(root, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_status(root: Path, name: str, payload: dict[str, Any]) -> Path:
    path = status_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time written here, or None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
