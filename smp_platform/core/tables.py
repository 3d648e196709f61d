"""The warehouse's tables as data: every column and its DuckDB type, the frames a load is made of.

The source readers build their rows to these columns, the feature groups read them (the posts
frame a group's compute receives), and :mod:`smp_platform.infra.warehouse` creates its tables
from them (docs/CONTRACTS.md). A column is declared once, here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

# -- columns -------------------------------------------------------------------------------------
# Every table's columns and DuckDB types, in table order: the DDL, the readers' frames and the
# Arrow staging tables are all built from these, so a column is declared once.
POST_COLUMNS: dict[str, str] = {
    "post_id": "VARCHAR",
    "user_id": "VARCHAR",
    "posted_at": "TIMESTAMP",
    "title": "VARCHAR",
    "tags": "VARCHAR[]",
    "language": "VARCHAR",
    "location": "VARCHAR",
    "latitude": "DOUBLE",
    "longitude": "DOUBLE",
    "geo_accuracy": "DOUBLE",
    "category": "VARCHAR",
    "subcategory": "VARCHAR",
    "concept": "VARCHAR",
    "media_type": "VARCHAR",
    "media_path": "VARCHAR",
    "media_width": "DOUBLE",
    "media_height": "DOUBLE",
    "media_duration": "DOUBLE",
    "music_title": "VARCHAR",
    "music_duration": "DOUBLE",
    "caption": "VARCHAR",
    "source_format": "VARCHAR",
    "source_file": "VARCHAR",
    "content_hash": "VARCHAR",
}
AUTHOR_COLUMNS: dict[str, str] = {
    "post_id": "VARCHAR",
    "user_id": "VARCHAR",
    "follower_count": "BIGINT",
    "following_count": "BIGINT",
    "likes_count": "BIGINT",
    "post_count": "BIGINT",
    "digg_count": "BIGINT",
    "heart_count": "BIGINT",
    "friend_count": "BIGINT",
    "is_pro": "BOOLEAN",
    "first_post_at": "TIMESTAMP",
    "timezone_offset": "DOUBLE",
    "content_hash": "VARCHAR",
}
LABEL_COLUMNS: dict[str, str] = {"post_id": "VARCHAR", "popularity": "DOUBLE"}
QUARANTINE_COLUMNS: dict[str, str] = {
    "source_file": "VARCHAR",
    "line": "BIGINT",
    "post_id": "VARCHAR",
    "reason": "VARCHAR",  # "<kind>: <detail>"; summaries count by kind
    "raw": "VARCHAR",
}

# An upsert compares content hashes over these columns. Where the row came from is not content:
# the same post read from a copy of the file is unchanged.
_NOT_CONTENT = {"source_format", "source_file", "content_hash"}
POST_CONTENT_COLUMNS = tuple(c for c in POST_COLUMNS if c not in _NOT_CONTENT)
AUTHOR_CONTENT_COLUMNS = tuple(c for c in AUTHOR_COLUMNS if c not in _NOT_CONTENT)

_PANDAS_DTYPES = {
    "VARCHAR": "object",
    "VARCHAR[]": "object",
    "DOUBLE": "float64",
    "BIGINT": "Int64",
    "BOOLEAN": "boolean",
    "TIMESTAMP": "datetime64[us]",
}


def reason_kind(reason: str) -> str:
    """The kind of a quarantine reason ("bad JSON: Expecting value ..." -> "bad JSON")."""
    return reason.split(":", 1)[0]


@dataclass
class ParsedBatch:
    """One load's rows, as :meth:`Warehouse.ingest` takes them.

    Columns are the tables' (``POST_COLUMNS`` ...) minus ``ingested_at``; build the frames with
    :func:`frame_from_records` so that an empty frame has the same dtypes as a full one.
    """

    posts: pd.DataFrame
    authors: pd.DataFrame
    labels: pd.DataFrame
    quarantine: pd.DataFrame


def frame_from_records(records: list[dict[str, Any]], columns: Mapping[str, str]) -> pd.DataFrame:
    """A frame with exactly ``columns`` in order, typed as the warehouse column types."""
    return pd.DataFrame(
        {
            name: pd.Series([r.get(name) for r in records], dtype=_PANDAS_DTYPES[sql_type])
            for name, sql_type in columns.items()
        }
    )


# The author's columns a post carries (post_id and user_id come from the post itself): what the
# posts frame of a feature group holds beside the post's own columns.
AUTHOR_PROFILE_COLUMNS = tuple(
    c for c in AUTHOR_COLUMNS if c not in ("post_id", "user_id", "content_hash")
)
