"""The online store is its own setting beside the profile: SQLite under the data dir, Redis,
or a Feast store class of one's own by its dotted path, with its options."""

from __future__ import annotations

from pathlib import Path

from smp_platform.core.config import Settings
from smp_platform.infra.feast_store import FeatureStoreGateway


def test_the_profile_chooses_unless_the_setting_says(tmp_path: Path) -> None:
    embedded = FeatureStoreGateway(Settings(data_dir=tmp_path)).config_dict()
    assert embedded["online_store"] == {
        "type": "smp_platform.infra.sqlite_store.WideSqliteOnlineStore",
        "path": str(tmp_path.resolve() / "feast" / "online.db"),
    }
    assert embedded["registry"]["registry_type"] == "file"
    redis = FeatureStoreGateway(Settings(data_dir=tmp_path, online_store="redis")).config_dict()
    assert redis["online_store"]["type"] == "redis"
    assert redis["online_store"]["connection_string"] == "127.0.0.1:6379,db=0"
    assert redis["registry"]["registry_type"] == "file"  # the profile still says embedded
    compose = Settings(data_dir=tmp_path, profile="compose", online_store="sqlite")
    config = FeatureStoreGateway(compose).config_dict()
    assert config["online_store"]["type"].endswith("WideSqliteOnlineStore")
    assert config["registry"]["registry_type"] == "sql"


def test_a_store_of_ones_own_by_its_class_path_and_options(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        online_store="my_team.stores.CassandraLikeStore",
        online_store_options={"hosts": ["10.0.0.1"], "keyspace": "smp"},
    )
    assert FeatureStoreGateway(settings).config_dict()["online_store"] == {
        "type": "my_team.stores.CassandraLikeStore",
        "hosts": ["10.0.0.1"],
        "keyspace": "smp",
    }
