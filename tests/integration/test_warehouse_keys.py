"""``Warehouse.post_input_keys``: the light read that plans a refresh must give the same input
hashes, in the same order, as the full ``posts_frame`` it replaces."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from smp_platform.core.tables import (
    AUTHOR_COLUMNS,
    LABEL_COLUMNS,
    POST_COLUMNS,
    POST_CONTENT_COLUMNS,
    QUARANTINE_COLUMNS,
    frame_from_records,
)
from smp_platform.features.group import Input
from smp_platform.features.inputs import input_hashes as hashes_of
from smp_platform.infra.warehouse import Warehouse
from smp_platform.sources import ParsedBatch, content_hash, read_source
from smp_platform.testing.smpd_files import write_smpd_dataset
from tests.helpers import BUNDLED

# Every input a hash can cover but the label history (a frame of its own).
ALL_INPUTS = frozenset({Input.POST, Input.AUTHOR_PROFILE, Input.MEDIA})


def input_hashes(posts):  # type: ignore[no-untyped-def]
    return hashes_of(ALL_INPUTS, posts)


pytestmark = pytest.mark.integration

TRAIN = BUNDLED / "train"


def authorless_post(post_id: str, posted_at: datetime) -> ParsedBatch:
    """A post with no author row: its author_content_hash is NULL."""
    row = {
        "post_id": post_id,
        "user_id": "nobody",
        "posted_at": posted_at,
        "title": "t",
        "tags": [],
        "source_format": "test",
        "source_file": "hand",
    }
    row["content_hash"] = content_hash(row, POST_CONTENT_COLUMNS)
    return ParsedBatch(
        posts=frame_from_records([row], POST_COLUMNS),
        authors=frame_from_records([], AUTHOR_COLUMNS),
        labels=frame_from_records([], LABEL_COLUMNS),
        quarantine=frame_from_records([], QUARANTINE_COLUMNS),
    )


def test_input_keys_give_the_same_hashes_as_the_full_posts_frame(tmp_path: Path) -> None:
    smpd = write_smpd_dataset(tmp_path / "smpd", 300, seed=3)
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.ingest(read_source("smp-video", TRAIN))
        warehouse.ingest(read_source("smpd", smpd))
        warehouse.ingest(authorless_post("lonely", datetime(2016, 6, 1, 12)))
        full = warehouse.posts_frame()
        keys = warehouse.post_input_keys()

    assert list(keys.columns) == ["post_id", "content_hash", "author_content_hash", "media_path"]
    assert len(keys) == len(full) > 300
    assert keys["post_id"].tolist() == full["post_id"].tolist()
    assert keys["author_content_hash"].isna().sum() == 1  # the authorless post is kept
    assert input_hashes(keys).tolist() == input_hashes(full).tolist()


def test_input_keys_of_an_empty_warehouse(tmp_path: Path) -> None:
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        keys = warehouse.post_input_keys()
        assert keys.empty
        assert input_hashes(keys).tolist() == input_hashes(warehouse.posts_frame()).tolist()
