"""Offline sources: partitioned parquet under ``<data dir>/offline/<view>/``.

Each refresh batch writes one file per view, named by its content, so a re-run overwrites
instead of duplicating. Feast's DuckDB offline store scans the glob in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The post's publication time: a row holds what was known then (point-in-time joins).
EVENT_TIMESTAMP = "event_timestamp"
# When the row was computed: Feast keeps the latest for a given event time.
CREATED_AT = "created_at"


def offline_view_dir(offline_dir: Path, view_name: str) -> Path:
    return Path(offline_dir).resolve() / view_name


def file_source(offline_dir: Path, view_name: str) -> Any:
    """A FileSource over every parquet part of one view (absolute path: DuckDB needs it)."""
    from feast import FileSource
    from feast.data_format import ParquetFormat

    return FileSource(
        name=f"{view_name}_source",
        path=str(offline_view_dir(offline_dir, view_name) / "*.parquet"),
        file_format=ParquetFormat(),
        timestamp_field=EVENT_TIMESTAMP,
        created_timestamp_column=CREATED_AT,
        description=f"Parquet parts of the {view_name} feature view",
    )
