"""Offline sources: partitioned parquet under ``<data dir>/offline/<view>/``.

Each refresh batch writes one file per view, named by its content, so a re-run overwrites
instead of duplicating. Feast's DuckDB offline store scans the glob in place.
"""

from __future__ import annotations

import os
from pathlib import Path

from feast import FileSource
from feast.data_format import ParquetFormat

EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_at"


def offline_view_dir(offline_dir: Path, view_name: str) -> Path:
    return Path(offline_dir).resolve() / view_name


def file_source(offline_dir: Path, view_name: str) -> FileSource:
    """A FileSource over every parquet part of one view (absolute path: DuckDB needs it)."""
    return FileSource(
        name=f"{view_name}_source",
        path=str(offline_view_dir(offline_dir, view_name) / "*.parquet"),
        file_format=ParquetFormat(),
        timestamp_field=EVENT_TIMESTAMP,
        created_timestamp_column=CREATED_TIMESTAMP,
        description=f"Parquet parts of the {view_name} feature view",
    )


def default_offline_dir() -> Path:
    """For the ``feast`` CLI only; the platform passes its settings' directory explicitly."""
    return Path(os.environ.get("SMP_DATA_DIR", ".smp")).resolve() / "offline"
