"""The compose profile against the real PostgreSQL and Redis of this machine.

Feast SQL registry and MLflow tracking/registry live in a database of their own per test; the
Feast online store is Redis, namespaced by a per-test Feast project and torn down afterwards.
A server that cannot be reached fails the test with its name; it is never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from smp_platform.core.config import Settings
from smp_platform.pipeline.ingest import ingest
from tests.helpers import REDIS_URL, compose_profile, write_subset

pytestmark = pytest.mark.integration


def _redis():  # type: ignore[no-untyped-def]
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
    return client


@pytest.fixture
def compose_settings(tmp_path: Path) -> Iterator[Settings]:
    with compose_profile(tmp_path / "data") as (settings, _):
        yield settings


def test_refresh_train_promote_and_lookup_on_postgres_and_redis(
    compose_settings: Settings, tmp_path: Path, prefect_server: None
) -> None:
    import psycopg

    from flows.promote import run_promote
    from flows.refresh import run_refresh
    from flows.train import run_train
    from smp_platform.pipeline.ingest import ingest
    from smp_platform.service.runner import running_service

    settings = compose_settings
    redis_client = _redis()
    data = write_subset("train", tmp_path / "train", n=150)
    ingest(settings, "smp-video", data)
    summary = run_refresh(settings)
    assert summary.written["post_temporal"] == 150
    assert set(summary.disabled) >= {"text", "perplexity"}
    outcome = run_train(settings)
    decision = run_promote(settings, outcome.version)
    assert "first champion" in str(decision)

    # The stores really are the servers: registry and MLflow tables in Postgres, rows in Redis.
    dbname = settings.compose.postgres_dsn.get_secret_value().rsplit("/", 1)[1]
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{dbname}") as con:
        tables = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
        versions = con.execute("SELECT count(*) FROM model_versions").fetchone()[0]
    assert {"feature_views", "feature_services", "model_versions", "registered_models"} <= tables
    assert versions == 1
    assert redis_client.dbsize() > 0

    post_id = pd.read_json(next(data.glob("*posts*")), lines=True)["pid"].iloc[-1]
    with running_service(settings) as url:
        body = httpx.get(f"{url}/v1/posts/{post_id}/popularity", timeout=30).json()
    assert body["post_id"] == post_id
    assert body["model_version"] == outcome.version
    assert 0 < body["popularity"] < 20


def test_compose_profile_renders_redis_and_sql_registry(compose_settings: Settings) -> None:
    from smp_platform.infra.feast_store import FeatureStoreGateway

    config = FeatureStoreGateway(compose_settings).config_dict()
    assert config["online_store"] == {
        "type": "redis",
        "connection_string": "127.0.0.1:6379,db=0",
        "skip_dedup": True,
    }
    assert config["registry"]["registry_type"] == "sql"
    assert config["registry"]["path"] == compose_settings.compose.postgres_dsn.get_secret_value()
    assert config["project"] == compose_settings.feast_project
    assert (
        compose_settings.mlflow_tracking_uri
        == compose_settings.compose.mlflow_tracking_uri.get_secret_value()
    )


def test_a_recomputed_post_replaces_its_row_in_redis(
    compose_settings: Settings, tmp_path: Path
) -> None:
    """A post recomputed by a later refresh keeps its event time (its publication time): Feast's
    Redis store skips such writes unless asked not to, and the lookup would serve the old row."""
    import json

    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.pipeline.refresh import refresh

    settings = compose_settings.model_copy(
        update={"encoders": compose_settings.encoders.model_copy(update={"clip_weights": None})}
    )
    _redis()
    data = write_subset("train", tmp_path / "train", n=120)
    ingest(settings, "smp-video", data)
    refresh(settings)
    posts = pd.read_json(next(data.glob("*posts*")), lines=True).sort_values("post_time")
    author = posts["uid"].value_counts().index[0]
    first, later = posts.loc[posts["uid"] == author, "pid"].astype(str).tolist()[:2]

    labels = next(data.glob("*popularity*"))
    records = [json.loads(line) for line in labels.read_text().splitlines() if line.strip()]
    for record in records:
        if record["pid"] == first:
            record["popularity"] = 42.0
    labels.write_text("".join(json.dumps(r) + "\n" for r in records))
    ingest(settings, "smp-video", data)
    summary = refresh(settings)
    assert summary.written["post_author_popularity"] >= 1

    online = FeatureStoreGateway(settings).online_features([later], settings.feature_service)
    assert online["author_popularity_max"].iloc[0] == 42.0
