"""A data dir whose path holds spaces, a quote or non-ASCII letters works like any other:
paths travel as values, never inside SQL text."""

from __future__ import annotations

from pathlib import Path

import pytest

from smp_platform.infra.warehouse import Warehouse
from smp_platform.sources import read_source
from tests.helpers import BUNDLED

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", ["with space", "it's", "d'données ✓ 数据", 'say "hi"; --'])
def test_warehouse_in_a_data_dir_with_an_odd_name(tmp_path: Path, name: str) -> None:
    data_dir = tmp_path / name
    batch = read_source("smp-video", BUNDLED / "train")

    with Warehouse(data_dir / "warehouse.duckdb") as warehouse:
        summary = warehouse.ingest(batch)
        post_ids = warehouse.posts_frame().post_id.tolist()
        assert warehouse.quarantine_features([(post_ids[0], "image: unreadable")]) == 1
        history = warehouse.author_history(post_ids[:3])
        keys = warehouse.post_input_keys()
        labels = warehouse.labels_frame()

    assert summary.loaded == len(batch.posts) > 0
    assert str(summary).startswith(f"{summary.loaded:,} loaded ({summary.loaded:,} new, 0 updated")
    assert history.post_id.tolist() == post_ids[:3]
    assert keys.post_id.tolist() == post_ids
    assert len(labels) == len(batch.labels)
    with Warehouse(data_dir / "warehouse.duckdb", read_only=True) as reopened:
        assert reopened.count("posts") == len(post_ids)
        assert reopened.count("quarantine") == len(batch.quarantine) + 1
