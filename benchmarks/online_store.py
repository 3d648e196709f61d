"""The embedded online store's layout: Feast's own SQLite store (one row per post per feature)
against ``WideSqliteOnlineStore`` (one row per post and view, scalars as SQLite values).

Both are driven through Feast's online-store interface in this process, on the same rows: the
feature views and online rows of a data dir (every view the data dir serves, as Feast's
``online_read`` returns them). Prints, per layout and as the ratio wide / Feast's:

1. the write of every row (``online_write_batch``: what ``materialize`` and ``push`` call);
2. Feast's ``online_read`` of 1 post and of 1,000 posts, every view;
3. the database's size on disk.

    .venv/bin/python benchmarks/online_store.py                      # builds a platform
    .venv/bin/python benchmarks/online_store.py --data-dir .smp-demo # after `make demo`
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _timing import stats, time_calls
from online_latency import platform_settings

from smp_platform.core.config import use_offline_environment

use_offline_environment()

LAYOUTS = {
    "Feast's SQLite": "sqlite",
    "wide": "smp_platform.infra.sqlite_store.WideSqliteOnlineStore",
}


def _store(root: Path, project: str, online_type: str) -> Any:
    from feast.repo_config import RepoConfig

    from smp_platform.infra.sqlite_store import WideSqliteOnlineStore

    config = RepoConfig(
        project=project,
        provider="local",
        registry=str(root / "registry.db"),
        online_store={"type": online_type, "path": str(root / "online.db")},
        offline_store={"type": "duckdb"},
        entity_key_serialization_version=3,
        repo_path=root,
    )
    if online_type == "sqlite":
        from feast.infra.online_stores.sqlite import SqliteOnlineStore

        return config, SqliteOnlineStore()
    return config, WideSqliteOnlineStore()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="a data dir whose online rows to copy")
    parser.add_argument("--posts", type=int, default=1000, help="posts when building")
    parser.add_argument("--repeat", type=int, default=20, help="reads of 1,000 posts")
    args = parser.parse_args()

    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.infra.warehouse import Warehouse

    settings = platform_settings(args.data_dir, args.posts, "smp-bench-store-")
    gateway = FeatureStoreGateway(settings)
    source = gateway.store
    views = source.list_feature_views()
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        post_ids = warehouse.posts_frame()["post_id"].astype(str).tolist()
    keys = [EntityKey(join_keys=["post_id"], entity_values=[Value(string_val=p)]) for p in post_ids]
    online = source._get_provider().online_store
    rows: dict[str, list[Any]] = {}
    for view in views:
        answer = online.online_read(source.config, view, keys, None)
        rows[view.name] = [
            (key, values, when, None)
            for key, (when, values) in zip(keys, answer, strict=True)
            if values
        ]
    total = sum(len(r) for r in rows.values())
    values = sum(len(r[1]) for view_rows in rows.values() for r in view_rows)
    print(
        f"{len(post_ids):,} posts, {len(views)} views, {total:,} view rows, {values:,} values "
        f"(from {settings.root}); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )

    asked = [keys[i % len(keys)] for i in range(1000)]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="smp-bench-layout-") as tmp:
        for label, online_type in LAYOUTS.items():
            root = Path(tmp) / online_type.rsplit(".", 1)[-1]
            root.mkdir()
            config, store = _store(root, source.project, online_type)
            store.update(config, [], views, [], [], False)
            start = time.perf_counter()
            for view in views:
                store.online_write_batch(config, view, rows[view.name], None)
            write = time.perf_counter() - start

            def read(posts: list[Any], config: Any = config, store: Any = store) -> None:
                for view in views:
                    store.online_read(config, view, posts, None)

            one = stats(time_calls(lambda read=read: read(asked[:1]), 300))
            many = stats(time_calls(lambda read=read: read(asked), args.repeat))
            store._conn.close()
            results[label] = {
                "write_s": write,
                "one_ms": one["p50_ms"],
                "many_ms": many["p50_ms"],
                "mb": (root / "online.db").stat().st_size / 1e6,
            }

    print(f"{'':44}{'write all s':>12}{'read 1 ms':>11}{'read 1,000 ms':>15}{'MB':>8}")
    for label, r in results.items():
        print(
            f"{label:44}{r['write_s']:>12.2f}{r['one_ms']:>11.3f}{r['many_ms']:>15.1f}"
            f"{r['mb']:>8.1f}"
        )
    base, wide = results["Feast's SQLite"], results["wide"]
    print(
        "ratio wide / Feast's SQLite: "
        + ", ".join(
            f"{name} {wide[key] / base[key]:.2f}x"
            for name, key in [
                ("write", "write_s"),
                ("read 1", "one_ms"),
                ("read 1,000", "many_ms"),
                ("size", "mb"),
            ]
        )
    )


if __name__ == "__main__":
    main()
