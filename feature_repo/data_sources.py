"""Offline sources: partitioned parquet under ``<data dir>/offline/<view>/``.

Each refresh batch writes one file per view, named by its content, so a re-run overwrites
instead of duplicating. Feast's DuckDB offline store scans the glob in place.

The views of request-time groups (a post's own fields compute them: drafts, pushed posts) read
that parquet through a ``PushSource`` named ``<view>_push``: the parquet stays their batch source
(training, materialize), and ``POST /v1/posts`` / ``smp ingest --push`` write a fresh post's row
online through the push source before the nightly refresh.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smp_platform.features.schema import CREATED_AT, EVENT_TIMESTAMP

# The event time of a pushed (provisional) online row: older than any post's own time (the
# sources reject posts before 1990), so the nightly row, which carries the post's time, always
# supersedes it. Feast's Redis online store skips a write whose event time is not newer than the
# stored one, and SQLite overwrites whatever is there: with the pushed row older, "the nightly
# row wins" holds in both. Kept off 0 (the epoch): Redis reads a stored time of 0 as "none".
PUSHED_EVENT_TIME = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)


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


def push_source_name(view_name: str) -> str:
    return f"{view_name}_push"


def push_source(offline_dir: Path, view_name: str) -> Any:
    """A PushSource over the view's parquet (its batch source): fresh posts go online through
    it; training and materialize read the parquet as before."""
    from feast import PushSource

    return PushSource(
        name=push_source_name(view_name),
        batch_source=file_source(offline_dir, view_name),
        description=f"Fresh posts' {view_name} rows, pushed online before the nightly refresh",
    )
