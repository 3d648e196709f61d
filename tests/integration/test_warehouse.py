"""The DuckDB warehouse on the bundled SMP-Video sample and on hand-made posts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from smp_platform.core.tables import (
    AUTHOR_COLUMNS,
    AUTHOR_CONTENT_COLUMNS,
    LABEL_COLUMNS,
    POST_COLUMNS,
    POST_CONTENT_COLUMNS,
    QUARANTINE_COLUMNS,
    frame_from_records,
)
from smp_platform.infra.warehouse import Warehouse
from smp_platform.sources import ParsedBatch, content_hash, read_source
from tests.helpers import BUNDLED, write_subset

pytestmark = pytest.mark.integration

TRAIN = BUNDLED / "train"
UNLABELED = BUNDLED / "unlabeled"


def hand_made_batch(posts: list[tuple[str, str, datetime]], **post_fields: Any) -> ParsedBatch:
    """Posts (post_id, user_id, posted_at) with their authors; extra fields go on every post."""
    post_rows, author_rows = [], []
    for post_id, user_id, posted_at in posts:
        row = {
            "post_id": post_id,
            "user_id": user_id,
            "posted_at": posted_at,
            "title": "t",
            "tags": [],
            "source_format": "test",
            "source_file": "hand",
            **post_fields,
        }
        row["content_hash"] = content_hash(row, POST_CONTENT_COLUMNS)
        author = {"post_id": post_id, "user_id": user_id, "follower_count": 10}
        author["content_hash"] = content_hash(author, AUTHOR_CONTENT_COLUMNS)
        post_rows.append(row)
        author_rows.append(author)
    return ParsedBatch(
        posts=frame_from_records(post_rows, POST_COLUMNS),
        authors=frame_from_records(author_rows, AUTHOR_COLUMNS),
        labels=frame_from_records([], LABEL_COLUMNS),
        quarantine=frame_from_records([], QUARANTINE_COLUMNS),
    )


@pytest.fixture(scope="module")
def train_batch() -> ParsedBatch:
    return read_source("smp-video", TRAIN)


def test_bundled_train_loads_every_post_author_and_label(
    tmp_path: Path, train_batch: ParsedBatch
) -> None:
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        summary = warehouse.ingest(train_batch)
        assert (summary.inserted, summary.updated, summary.unchanged) == (3200, 0, 0)
        assert summary.labels == 3200
        assert warehouse.count("posts") == 3200
        assert warehouse.count("post_authors") == 3200
        assert warehouse.count("labels") == 3200
        assert warehouse.count("quarantine") == summary.quarantined == 0
        assert str(summary) == (
            "3,200 loaded (3,200 new, 0 updated, 0 unchanged), "
            "3,200 labels (3,200 added, 0 changed, 0 unchanged), 0 quarantined"
        )

        posts = warehouse.posts_frame()
        assert len(posts) == 3200
        assert posts.posted_at.is_monotonic_increasing
        assert posts.posted_at.max() < pd.Timestamp("2023-07-08 18:28")  # as the README says
        assert posts.follower_count.notna().all()  # every post has its author
        assert isinstance(posts.tags.iloc[0], list)
        assert {"content_hash", "author_content_hash", "post_count"} <= set(posts.columns)
        labels = warehouse.labels_frame()
        assert list(labels.columns) == ["post_id", "popularity", "posted_at"]
        assert labels.popularity.between(1.2, 13.4).all()
        one = warehouse.posts_frame(["POST00000548", "NO_SUCH_POST"])
        assert one.post_id.tolist() == ["POST00000548"]
        assert one.user_id.iloc[0] == "USER00002917"


def test_loading_twice_changes_nothing(tmp_path: Path, train_batch: ParsedBatch) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse(path) as warehouse:
        warehouse.ingest(train_batch)
        ingested_at = warehouse.posts_frame().set_index("post_id").ingested_at
        again = warehouse.ingest(read_source("smp-video", TRAIN))
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3200)
        assert warehouse.count("posts") == 3200
        assert warehouse.count("labels") == 3200
        # Unchanged rows keep the time they were first loaded.
        after = warehouse.posts_frame().set_index("post_id").ingested_at
        assert after.equals(ingested_at)
    with Warehouse(path, read_only=True) as reader:
        assert reader.count("post_authors") == 3200


def test_quarantine_is_reported_each_load_but_stored_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # 20 real posts with their videos, labels and all users, then two bad post lines.
    posts_file = next(TRAIN.glob("*posts*.jsonl"))
    posts = posts_file.read_text(encoding="utf-8").splitlines()[:20]
    kept = {json.loads(line)["pid"] for line in posts}
    posts += [
        '{"pid": "BROKEN',
        json.dumps({"pid": "P_X", "uid": "NOBODY", "post_time": "2023-01-01 00:00"}),
    ]
    (data / posts_file.name).write_text("\n".join(posts) + "\n", encoding="utf-8")
    for src in TRAIN.glob("*.jsonl"):
        if src != posts_file:
            lines = [
                line
                for line in src.read_text(encoding="utf-8").splitlines()
                if "users" in src.name or json.loads(line)["pid"] in kept
            ]
            (data / src.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        first = warehouse.ingest(read_source("smp-video", data))
        second = warehouse.ingest(read_source("smp-video", data))
        assert first.quarantined == second.quarantined == 2
        assert (first.inserted, second.unchanged) == (20, 20)
        assert first.reasons["bad JSON"] == 1
        assert first.reasons["missing user"] == 1
        assert first.quarantined_new == first.quarantined
        assert second.quarantined_new == 0
        assert warehouse.count("quarantine") == first.quarantined
        assert "1 bad JSON" in str(second) and "1 missing user" in str(second)
        quarantine = warehouse.quarantine_frame()
        assert set(quarantine.line) == {21, 22}
        assert "P_X" in set(quarantine.post_id)


def test_a_changed_post_counts_as_updated(tmp_path: Path, train_batch: ParsedBatch) -> None:
    edited = ParsedBatch(
        train_batch.posts.copy(),
        train_batch.authors.copy(),
        train_batch.labels.copy(),
        train_batch.quarantine.copy(),
    )
    edited.posts.loc[0, "title"] = "a new caption"
    edited.posts.loc[0, "content_hash"] = content_hash(
        edited.posts.loc[0].to_dict(), POST_CONTENT_COLUMNS
    )
    edited.labels.loc[0, "popularity"] = 99.0
    post_id = edited.posts.loc[0, "post_id"]
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.ingest(train_batch)
        summary = warehouse.ingest(edited)
        assert (summary.inserted, summary.updated, summary.unchanged) == (0, 1, 3199)
        assert warehouse.count("posts") == 3200
        assert warehouse.posts_frame([post_id]).title.iloc[0] == "a new caption"
        labels = warehouse.labels_frame().set_index("post_id").popularity
        assert labels[edited.labels.loc[0, "post_id"]] == 99.0


def test_labels_changed_or_added_in_the_files_are_counted(tmp_path: Path) -> None:
    """A label that changed on an unchanged post is work for training: the summary says so."""
    data = write_subset("train", tmp_path / "data", n=30)
    labels_file = next(data.glob("*popularity*.jsonl"))
    rows = [json.loads(line) for line in labels_file.read_text().splitlines()]
    held_back = rows.pop()  # its post is loaded without a label first

    def write_labels() -> None:
        labels_file.write_text("".join(json.dumps(r) + "\n" for r in rows))

    write_labels()
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        first = warehouse.ingest(read_source("smp-video", data))
        assert (first.labels, first.labels_added, first.labels_changed) == (29, 29, 0)

        rows[0]["popularity"] = rows[0]["popularity"] + 1.5
        write_labels()
        changed = warehouse.ingest(read_source("smp-video", data))
        assert (changed.inserted, changed.updated, changed.unchanged) == (0, 0, 30)
        assert (changed.labels_added, changed.labels_changed, changed.labels_unchanged) == (
            0,
            1,
            28,
        )
        assert "29 labels (0 added, 1 changed, 28 unchanged)" in str(changed)
        stored = warehouse.labels_frame().set_index("post_id").popularity
        assert stored[rows[0]["pid"]] == pytest.approx(rows[0]["popularity"])

        rows.append(held_back)
        write_labels()
        added = warehouse.ingest(read_source("smp-video", data))
        assert (added.labels, added.labels_added, added.labels_changed) == (30, 1, 0)
        assert "30 labels (1 added, 0 changed, 29 unchanged)" in str(added)
        assert warehouse.count("labels") == 30


def test_new_unlabeled_posts_add_to_the_warehouse(tmp_path: Path, train_batch: ParsedBatch) -> None:
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.ingest(train_batch)
        summary = warehouse.ingest(read_source("smp-video", UNLABELED))
        assert (summary.inserted, summary.labels) == (2000, 0)
        assert warehouse.count("posts") == 5200
        assert warehouse.count("labels") == 3200


def test_author_history_counts_strictly_earlier_posts_of_the_same_user(tmp_path: Path) -> None:
    t0 = datetime(2023, 1, 1)
    batch = hand_made_batch(
        [
            ("a1", "alice", t0),
            ("a2", "alice", t0 + timedelta(days=2)),
            ("a3", "alice", t0 + timedelta(days=2)),  # same instant as a2: neither precedes
            ("a4", "alice", t0 + timedelta(days=5, hours=12)),
            ("b1", "bob", t0 + timedelta(days=1)),
        ]
    )
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.ingest(batch)
        history = warehouse.author_history(["a4", "b1", "a3", "a2", "a1", "ghost"])
    assert history.post_id.tolist() == ["a4", "b1", "a3", "a2", "a1", "ghost"]  # request order
    prior = dict(zip(history.post_id, history.author_prior_posts, strict=True))
    assert {k: prior[k] for k in ("a1", "a2", "a3", "a4", "b1")} == {
        "a1": 0,
        "a2": 1,
        "a3": 1,
        "a4": 3,
        "b1": 0,
    }
    days = history.set_index("post_id").author_days_since_previous_post
    assert pd.isna(days["a1"]) and pd.isna(days["b1"])
    assert days["a2"] == pytest.approx(2.0)
    assert days["a3"] == pytest.approx(2.0)
    assert days["a4"] == pytest.approx(3.5)
    assert pd.isna(prior["ghost"])


def test_a_load_that_fails_midway_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = datetime(2023, 1, 1)
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.ingest(hand_made_batch([("p1", "u", t0)]))
        before = warehouse.posts_frame()

        def fail(self: Warehouse, now: datetime) -> None:
            raise RuntimeError("disk full")

        # Posts are already written when the authors step fails.
        monkeypatch.setattr(Warehouse, "_upsert_authors", fail)
        with pytest.raises(RuntimeError, match="disk full"):
            warehouse.ingest(hand_made_batch([("p1", "u", t0), ("p2", "u", t0)], title="new"))
        monkeypatch.undo()

        assert warehouse.count("posts") == 1
        assert warehouse.count("post_authors") == 1
        pd.testing.assert_frame_equal(warehouse.posts_frame(), before)
        # The connection is usable after the rollback.
        summary = warehouse.ingest(hand_made_batch([("p1", "u", t0), ("p2", "u", t0)]))
        assert (summary.inserted, summary.unchanged) == (1, 1)


def test_count_refuses_unknown_tables(tmp_path: Path) -> None:
    with Warehouse(tmp_path / "w.duckdb") as warehouse, pytest.raises(ValueError, match="posts"):
        warehouse.count("posts; DROP TABLE posts")


def test_read_only_on_a_missing_file_says_to_load_first(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="load a dataset first"):
        Warehouse(tmp_path / "none.duckdb", read_only=True)
