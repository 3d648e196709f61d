"""What lets readers (the service) go on while a writer works on the embedded default: Feast's
file registry is replaced atomically (a reader never sees a partial registry), the SQLite online
store is in WAL mode, and an unchanged definition set is not applied again."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from smp_platform.core.config import EncoderSettings, Settings

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


@pytest.fixture
def applied(tmp_path: Path) -> Settings:
    from smp_platform.infra.feast_store import FeatureStoreGateway

    settings = Settings(
        data_dir=tmp_path / "data",
        encoders=EncoderSettings(text_model=None, perplexity_model=None),
    )
    assert FeatureStoreGateway(settings).apply() is True
    return settings


def test_the_online_store_runs_in_wal_mode(applied: Settings) -> None:
    with sqlite3.connect(applied.feast_dir / "online.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_unchanged_definition_set_is_not_applied_again(applied: Settings) -> None:
    from smp_platform.infra.feast_store import FeatureStoreGateway

    registry = applied.feast_dir / "registry.db"
    before = registry.stat().st_mtime_ns
    assert FeatureStoreGateway(applied).apply() is False
    assert registry.stat().st_mtime_ns == before
    # Another data dir layout (the sources' paths) is another definition set.
    moved = applied.model_copy(update={"feast_project": "other"})
    assert FeatureStoreGateway(moved).apply() is True


def test_a_reader_never_sees_a_partial_registry_while_it_is_rewritten(applied: Settings) -> None:
    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

    from smp_platform.infra.feast_store import FeatureStoreGateway

    store = FeatureStoreGateway(applied).store
    registry_store = store.registry._registry_store
    assert type(registry_store).__name__ == "AtomicFileRegistryStore"
    proto = registry_store.get_registry_proto()
    views = len(proto.feature_views)
    assert views > 0
    path = applied.feast_dir / "registry.db"
    done = threading.Event()
    bad_reads: list[str] = []
    reads = 0

    def read_continuously() -> None:
        nonlocal reads
        while not done.is_set():
            seen = RegistryProto()
            try:
                seen.ParseFromString(path.read_bytes())
            except Exception as error:  # a torn file does not parse
                bad_reads.append(repr(error))
                continue
            reads += 1
            if len(seen.feature_views) != views:
                bad_reads.append(f"{len(seen.feature_views)} views")

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        for _ in range(300):
            registry_store.update_registry_proto(proto)
    finally:
        done.set()
        reader.join()
    assert reads > 0
    assert bad_reads == []
