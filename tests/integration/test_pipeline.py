"""The spine end to end on the embedded default: real DuckDB, Feast, MLflow, Prefect, GE."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pytest

from flows.refresh import run_refresh
from smp_platform.core.config import Settings
from smp_platform.infra.feast_store import FeatureStoreGateway
from smp_platform.pipeline.ingest import ingest
from smp_platform.pipeline.predict import predict_batch
from smp_platform.service.runner import running_service
from smp_platform.testing.feature_frames import builtin_groups

pytestmark = pytest.mark.integration
VIEW_FIELDS = [view.name for view in builtin_groups().views]


def _view_rows(settings: Settings) -> dict[str, int]:
    gateway = FeatureStoreGateway(settings)
    return {view: gateway.row_count(view) for view in VIEW_FIELDS}


def test_refresh_wrote_every_enabled_group_and_switched_off_the_image_group(platform) -> None:
    rows = _view_rows(platform.settings)
    for view in (
        "post_author",
        "post_temporal",
        "post_content",
        "post_text_semantics",
        "post_perplexity",
    ):
        assert rows[view] == 400, view
    # No CLIP weights exist offline: the image group is off, never filled with random weights.
    assert rows["post_image_semantics"] == 0


def test_second_refresh_computes_and_adds_nothing(platform) -> None:
    before = _view_rows(platform.settings)
    summary = run_refresh(platform.settings)
    assert _view_rows(platform.settings) == before
    assert sum(summary.written.values()) == 0
    assert all(n == 0 for n in summary.stale.values())


def test_training_frame_features_match_the_offline_rows(platform) -> None:
    from smp_platform.pipeline.frames import labelled_frame

    frame = labelled_frame(platform.settings)
    assert len(frame) == 400
    assert frame["popularity"].notna().all()
    # Every labelled post got its text features and perplexity through the point-in-time join.
    assert frame["text_embedding"].map(lambda v: v is not None and len(v) == 384).all()
    # Perplexity is undefined (null) only for posts without text.
    assert (frame["perplexity"].dropna() > 1).all()
    assert frame["perplexity"].notna().mean() > 0.9


def test_the_first_trained_version_became_champion_with_its_feature_service(platform) -> None:
    from smp_platform.infra.mlflow_registry import ModelRegistry

    version, service = ModelRegistry(platform.settings).champion()
    assert version == platform.train_outcome.version
    assert service == platform.settings.feature_service
    metrics, baseline = platform.train_outcome.metrics, platform.train_outcome.baseline
    # What a user relies on: on the time-split posts the champion ranks them (the median ranks
    # nothing: SRC 0) and misses them by far less than the median baseline does.
    assert baseline["src"] == 0.0
    assert metrics["src"] > 0.3, metrics
    assert metrics["mae"] < baseline["mae"] - 0.3, (metrics, baseline)


def test_online_prediction_equals_batch_prediction_for_unseen_posts(
    platform, platform_copy, tmp_path
) -> None:
    settings = platform_copy  # it ingests and refreshes the unseen posts: a copy of its own
    output = tmp_path / "predictions.csv"
    n = predict_batch(settings, "smp-video", platform.unseen_dir, output)
    batch = pd.read_csv(output, dtype={"post_id": str})
    assert n == len(batch) == 40
    assert batch["popularity"].between(0, 20).all()
    with running_service(settings) as url:
        online = {
            pid: httpx.get(f"{url}/v1/posts/{pid}/popularity", timeout=30).json()
            for pid in batch["post_id"]
        }
    for row in batch.itertuples():
        body = online[row.post_id]
        assert body["model_version"] == platform.train_outcome.version
        # No training/serving skew: the online store serves what the offline store holds.
        assert body["popularity"] == pytest.approx(row.popularity, abs=1e-6)


def test_service_answers_404_for_an_unknown_post_and_reports_health(platform) -> None:
    with running_service(platform.settings) as url:
        missing = httpx.get(f"{url}/v1/posts/NO_SUCH_POST/popularity", timeout=30)
        health = httpx.get(f"{url}/healthz", timeout=30).json()
    assert missing.status_code == 404
    assert "NO_SUCH_POST" in missing.json()["detail"]
    assert health == {
        "status": "ok",
        "model_name": platform.settings.train.model_name,
        "model_version": platform.train_outcome.version,
    }


def test_a_new_champion_is_served_without_a_restart(platform, platform_copy) -> None:
    from mlflow import MlflowClient
    from smp_platform.pipeline.train import train_candidate

    settings = platform_copy  # it registers a version and moves the alias
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    name = settings.train.model_name
    old = str(client.get_model_version_by_alias(name, "champion").version)
    post_id = pd.read_json(next(platform.train_dir.glob("*posts*")), lines=True)["pid"].iloc[0]
    with running_service(settings, poll_seconds=0) as url:
        before = httpx.get(f"{url}/v1/posts/{post_id}/popularity", timeout=30).json()
        retrained = settings.model_copy(
            update={"train": settings.train.model_copy(update={"seed": 7, "iterations": 60})}
        )
        candidate = train_candidate(retrained)
        client.set_registered_model_alias(name, "champion", candidate.version)
        try:
            # The champion is checked in the background (never on the request path): the new
            # version arrives within a poll interval plus one model load.
            deadline = time.monotonic() + 60
            after = before
            while after["model_version"] == old and time.monotonic() < deadline:
                time.sleep(0.2)
                after = httpx.get(f"{url}/v1/posts/{post_id}/popularity", timeout=30).json()
        finally:
            client.set_registered_model_alias(name, "champion", old)
    assert before["model_version"] == old
    assert after["model_version"] == candidate.version != old


def test_promotion_refuses_a_worse_candidate_and_keeps_the_alias(platform_copy) -> None:
    from mlflow import MlflowClient
    from smp_platform.pipeline.promote import promote_candidate
    from smp_platform.pipeline.train import train_candidate

    settings = platform_copy  # it registers a version
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    name = settings.train.model_name
    champion_before = str(client.get_model_version_by_alias(name, "champion").version)
    # A model with 2 trees of depth 1 cannot beat the champion trained on the same data.
    weak = settings.model_copy(
        update={"train": settings.train.model_copy(update={"iterations": 2, "depth": 1})}
    )
    candidate = train_candidate(weak)
    decision = promote_candidate(settings, candidate.version)
    assert not decision.promoted
    assert str(client.get_model_version_by_alias(name, "champion").version) == champion_before
    tags = client.get_model_version(name, candidate.version).tags
    assert tags["promotion_decision"] == "refused"
    assert champion_before in tags["promotion_compared_to"]


def test_point_in_time_join_never_uses_a_feature_written_after_the_label_time(tmp_path) -> None:
    from smp_platform.features.tabular import compute_temporal_features

    settings = Settings(data_dir=tmp_path / "pit")
    gateway = FeatureStoreGateway(settings)
    gateway.apply()
    posted = pd.Timestamp("2023-03-01 10:00")
    posts = pd.DataFrame({"post_id": ["p1"], "posted_at": [posted]})
    original = compute_temporal_features(posts).assign(input_hash="v1", encoder_id="t")
    gateway.write_view("post_temporal", original, datetime(2023, 3, 1, 10, 5, tzinfo=UTC))
    # A later row for the same post (e.g. a correction) with a different value.
    later = original.assign(
        event_timestamp=posted + timedelta(days=2), post_hour=23, input_hash="v2"
    )
    gateway.write_view("post_temporal", later, datetime(2023, 3, 3, tzinfo=UTC))
    entities = pd.DataFrame(
        {
            "post_id": ["p1", "p1"],
            "event_timestamp": [posted + timedelta(hours=1), posted + timedelta(days=3)],
        }
    )
    frame = gateway.historical_features(entities, "popularity_tabular_v1")
    assert frame["post_hour"].tolist() == [10, 23]
    before_post = pd.DataFrame(
        {"post_id": ["p1"], "event_timestamp": [posted - timedelta(hours=1)]}
    )
    assert (
        gateway.historical_features(before_post, "popularity_tabular_v1")["post_hour"].isna().all()
    )


def test_changing_one_encoder_replans_only_its_group(platform) -> None:
    from smp_platform.pipeline.refresh import plan_refresh

    settings = platform.settings
    # A different token bound changes the perplexity encoder's identity, nothing else.
    changed = settings.model_copy(
        update={"encoders": settings.encoders.model_copy(update={"perplexity_max_tokens": 16})}
    )
    from smp_platform.infra.warehouse import Warehouse

    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        n_posts = warehouse.count("posts")  # other tests may have added unseen posts
    assert plan_refresh(settings).stale == {"tabular": 0, "text": 0, "perplexity": 0}
    plan = plan_refresh(changed)
    assert plan.stale == {"tabular": 0, "text": 0, "perplexity": n_posts}
    assert {group for group, _ in plan.batches} == {"perplexity"}


def test_a_refresh_that_crashed_midway_reruns_without_duplicates_or_holes(
    tmp_path, prefect_server
) -> None:
    import duckdb

    from smp_platform.core.config import EncoderSettings
    from smp_platform.pipeline.refresh import now_utc, plan_refresh, process_batch
    from tests.helpers import write_subset

    settings = Settings(
        data_dir=tmp_path / "crash",
        refresh_batch_size=50,
        encoders=EncoderSettings(text_model=None, perplexity_model=None),
    )
    settings.ensure_dirs()
    ingest(settings, "smp-video", write_subset("train", tmp_path / "in", n=120))
    plan = plan_refresh(settings)
    assert len(plan.batches) == 3
    # The run dies after its first batch, and again after re-writing that same batch.
    group, ids = plan.batches[0]
    process_batch(group, ids, settings, now_utc())
    process_batch(group, ids, settings, now_utc())
    assert plan_refresh(settings).stale == {"tabular": 70}
    summary = run_refresh(settings)
    assert summary.written["post_temporal"] == 70
    for view in ("post_author", "post_temporal", "post_content"):
        glob = settings.offline_dir / view / "*.parquet"
        total, distinct = duckdb.sql(
            f"SELECT count(*), count(DISTINCT post_id) FROM read_parquet('{glob}')"
        ).fetchall()[0]
        assert total == distinct == 120, view
