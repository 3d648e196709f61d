"""The embedded online store (one row per post and view) through Feast's own interface, and the
service's reader over it: the same values as Feast's ``get_online_features``, partial writes,
a schema change, and the upgrade of a data dir written with Feast's layout."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

WIDE = "smp_platform.infra.sqlite_store.WideSqliteOnlineStore"
DIM = 8


def _objects(extra_feature: bool = False) -> tuple[Any, Any, Any, Any]:
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Array, Bool, Float32, Float64, Int64, String

    post = Entity(name="post", join_keys=["post_id"], value_type=ValueType.STRING)
    source = FileSource(path="/nonexistent.parquet", timestamp_field="event_timestamp")
    schema = [
        Field(name="likes", dtype=Float64),
        Field(name="tag_count", dtype=Int64),
        Field(name="language", dtype=String),
        Field(name="has_video", dtype=Bool),
    ]
    if extra_feature:
        schema.append(Field(name="event_ts", dtype=Float64))  # a bookkeeping column's name
    tabular = FeatureView(name="tabular", entities=[post], schema=schema, source=source)
    text = FeatureView(
        name="text",
        entities=[post],
        schema=[Field(name="embedding", dtype=Array(Float32))],
        source=source,
    )
    service = FeatureService(name="svc", features=[tabular, text])
    return post, tabular, text, service


def _store(
    root: Path, online_type: str = WIDE, extra_feature: bool = False, apply: bool = True
) -> Any:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    config = RepoConfig(
        project="wide",
        provider="local",
        registry=str(root / "registry.db"),
        online_store={"type": online_type, "path": str(root / "online.db")},
        offline_store={"type": "duckdb"},
        entity_key_serialization_version=3,
        repo_path=root,
    )
    store = FeatureStore(config=config)
    if apply:
        store.apply(list(_objects(extra_feature)))
    return store


def _frames(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    at = pd.Timestamp("2025-03-01", tz="UTC")
    ids = [f"p{i:04d}" for i in range(n)]
    tabular = pd.DataFrame(
        {
            "post_id": ids,
            "event_timestamp": at,
            "likes": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "tag_count": rng.integers(-5, 10**12, size=n),
            "language": [None if i % 7 == 0 else f"lang-{i % 3}" for i in range(n)],
            "has_video": rng.random(n) < 0.5,
        }
    )
    text = pd.DataFrame(
        {
            "post_id": ids,
            "event_timestamp": at,
            "embedding": [rng.normal(size=DIM).astype(np.float32) for _ in range(n)],
        }
    )
    return tabular, text


def _feast_values(store: Any, post_ids: list[str]) -> dict[str, list[Any]]:
    service = store.get_feature_service("svc")
    rows = [{"post_id": p} for p in post_ids]
    return store.get_online_features(features=service, entity_rows=rows).to_dict()


def test_feast_reads_what_it_wrote_one_row_per_post_and_view(tmp_path: Path) -> None:
    store = _store(tmp_path)
    tabular, text = _frames(30)
    store.write_to_online_store("tabular", tabular)
    store.write_to_online_store("text", text.iloc[:20])
    asked = ["p0003", "nope", "p0025", "p0000"]
    got = _feast_values(store, asked)
    expected = tabular.set_index("post_id")
    for i, post in enumerate(asked):
        if post == "nope":
            assert got["likes"][i] is None and got["embedding"][i] is None
            continue
        row = expected.loc[post]
        assert got["tag_count"][i] == row["tag_count"]
        assert got["has_video"][i] == row["has_video"]
        assert got["language"][i] == row["language"]
        assert (got["likes"][i] is None) == bool(np.isnan(row["likes"]))
    assert got["embedding"][asked.index("p0025")] is None  # no text row written
    assert np.allclose(got["embedding"][0], text.set_index("post_id").loc["p0003", "embedding"])
    with sqlite3.connect(tmp_path / "online.db") as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {"wide_tabular_wide", "wide_text_wide"}
        assert con.execute("SELECT count(*) FROM wide_tabular_wide").fetchone() == (30,)
        # scalars as SQLite's own values (readable by any client), lists as ValueProto bytes
        types = con.execute(
            "SELECT typeof(t.f_likes), typeof(t.f_tag_count), typeof(t.f_language), "
            "typeof(t.f_has_video), typeof(x.f_embedding) FROM wide_tabular_wide AS t "
            "JOIN wide_text_wide AS x USING (entity_key) WHERE t.f_likes IS NOT NULL "
            "AND t.f_language IS NOT NULL LIMIT 1"
        ).fetchone()
        assert types == ("real", "integer", "text", "integer", "blob")


def test_a_write_of_some_features_keeps_the_others_and_a_rewrite_replaces(tmp_path: Path) -> None:
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    store = _store(tmp_path)
    tabular, _ = _frames(3)
    store.write_to_online_store("tabular", tabular)
    view = store.get_feature_view("tabular")
    online = store._get_provider().online_store
    key = EntityKey(join_keys=["post_id"], entity_values=[Value(string_val="p0001")])
    later = datetime(2025, 4, 1, tzinfo=UTC)
    online.online_write_batch(
        store.config, view, [(key, {"likes": Value(double_val=42.0)}, later, None)], None
    )
    [(event_time, values)] = online.online_read(store.config, view, [key])
    assert values is not None and event_time == later
    assert values["likes"].double_val == 42.0
    assert values["tag_count"].int64_val == int(tabular.loc[1, "tag_count"])
    # the same post in one batch twice: its last row wins, as in Feast's own store
    online.online_write_batch(
        store.config,
        view,
        [
            (key, {"likes": Value(double_val=1.0)}, later, None),
            (key, {"likes": Value(double_val=2.0)}, later + timedelta(days=1), None),
        ],
        None,
    )
    [(event_time, values)] = online.online_read(store.config, view, [key], ["likes"])
    assert values == {"likes": Value(double_val=2.0)}
    assert event_time == later + timedelta(days=1)


def test_the_service_reader_equals_feast_for_one_post_and_many(tmp_path: Path) -> None:
    from smp_platform.service.reader import SMALL_READ, OnlineReader

    store = _store(tmp_path)
    tabular, text = _frames(60)
    store.write_to_online_store("tabular", tabular)
    store.write_to_online_store("text", text.iloc[::2])
    reader = OnlineReader(store, "svc")
    many = ["p0001", "missing", *[f"p{i:04d}" for i in range(0, 60, 3)], "p0001"]
    assert len(set(many)) > SMALL_READ  # the numpy decode path
    for asked in (["p0004"], ["missing"], many):
        block = reader.read(asked)
        feast = _feast_values(store, asked)
        for i, post in enumerate(asked):
            assert block.found[i] == (post != "missing")
            for name in ("likes", "tag_count", "has_video"):
                want = feast[name][i]
                got = block.numeric[name][i]
                assert (np.isnan(got) and want is None) or got == float(want), (post, name)
            assert block.strings["language"][i] == feast["language"][i]
            vector = block.embeddings["embedding"][i]
            if feast["embedding"][i] is None:
                assert vector is None
            else:
                assert np.array_equal(vector, np.asarray(feast["embedding"][i], np.float32))


def test_a_feature_added_to_a_view_gets_a_column_and_the_reader_follows(tmp_path: Path) -> None:
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from smp_platform.service.reader import OnlineReader

    store = _store(tmp_path)
    tabular, text = _frames(5)
    store.write_to_online_store("tabular", tabular)
    old_reader = OnlineReader(store, "svc")
    assert old_reader.read(["p0002"]).found[0]
    store = _store(tmp_path, extra_feature=True)  # `feast apply` of the changed view
    reader = OnlineReader(store, "svc")
    block = reader.read(["p0002"])
    assert np.isnan(block.numeric["event_ts"][0])  # not written yet: null, not an error
    view = store.get_feature_view("tabular")
    key = EntityKey(join_keys=["post_id"], entity_values=[Value(string_val="p0002")])
    at = datetime(2025, 5, 1, tzinfo=UTC)
    store._get_provider().online_store.online_write_batch(
        store.config, view, [(key, {"event_ts": Value(double_val=7.5)}, at, None)], None
    )
    block = reader.read(["p0002", "p0003"])
    assert block.numeric["event_ts"][0] == 7.5 and np.isnan(block.numeric["event_ts"][1])
    assert block.numeric["likes"][0] == pytest.approx(tabular.loc[2, "likes"], nan_ok=True)
    assert old_reader.read(["p0002"]).found[0]  # the old snapshot still reads its features


def test_a_data_dir_in_feasts_own_layout_is_moved_on_apply(tmp_path: Path) -> None:
    from smp_platform.service.reader import OnlineReader

    legacy = _store(tmp_path, online_type="sqlite")
    tabular, text = _frames(12)
    # int64 49 is serialized b" 1" (tag 0x20, varint 0x31): text a float parser would take as 1
    tabular.loc[5, "tag_count"] = 49
    legacy.write_to_online_store("tabular", tabular)
    legacy.write_to_online_store("text", text)
    before = _feast_values(legacy, ["p0000", "p0005", "p0011", "missing"])
    with sqlite3.connect(tmp_path / "online.db") as con:
        assert con.execute("SELECT count(*) FROM wide_tabular").fetchone() == (12 * 4,)

    upgraded = _store(tmp_path)  # the new configuration, applied
    asked = ["p0000", "p0005", "p0011", "missing"]
    assert _feast_values(upgraded, asked) == before
    # the moved rows hold Feast's bytes: the service's reader takes them too
    block = OnlineReader(upgraded, "svc").read(asked)
    assert block.found.tolist() == [True, True, True, False]
    assert block.strings["language"] == before["language"]
    for name in ("likes", "tag_count", "has_video"):
        want = [np.nan if v is None else float(v) for v in before[name]]
        np.testing.assert_array_equal(block.numeric[name], want)
    assert np.array_equal(block.embeddings["embedding"][1], np.float32(before["embedding"][1]))
    assert OnlineReader(upgraded, "svc").read(["p0005"]).numeric["tag_count"][0] == 49
    # a post written again is stored the new way beside the moved ones
    upgraded.write_to_online_store("tabular", tabular.iloc[[5]].assign(likes=0.25))
    block = OnlineReader(upgraded, "svc").read(["p0005", "p0011"])
    assert block.numeric["likes"][0] == 0.25
    assert block.numeric["likes"][1] == pytest.approx(tabular.loc[11, "likes"], nan_ok=True)
    with sqlite3.connect(tmp_path / "online.db") as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"wide_tabular_wide", "wide_text_wide"}


def test_a_data_dir_not_yet_applied_says_which_command_moves_it(tmp_path: Path) -> None:
    from smp_platform.service.reader import OnlineReader, OnlineStoreUnavailable

    legacy = _store(tmp_path, online_type="sqlite")
    tabular, _ = _frames(3)
    legacy.write_to_online_store("tabular", tabular)
    upgraded = _store(tmp_path, apply=False)  # new code, the old data dir, no refresh yet
    with pytest.raises(OnlineStoreUnavailable, match="run `smp refresh` once"):
        OnlineReader(upgraded, "svc").read(["p0001"])


def test_the_fast_entity_key_is_feasts_serialization(tmp_path: Path) -> None:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from smp_platform.infra.sqlite_store import string_key_encoder

    store = _store(tmp_path)
    encode = string_key_encoder(store.config, "post_id")
    for post_id in ["POST00004200", "", "a\u00e9\u4e2d\U0001f600", "x" * 1000, "with space"]:
        proto = EntityKey(join_keys=["post_id"], entity_values=[Value(string_val=post_id)])
        assert encode(post_id) == serialize_entity_key(proto, entity_key_serialization_version=3)
