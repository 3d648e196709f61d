"""Drift watched, on the real stack (DuckDB, Feast, MLflow, Prefect under the test harness):
each refresh measures the posts it wrote against the champion's training frame and logs the
table and plot; a promotion whose validation posts drifted beyond the bound is refused.

The story, on real posts of the bundled sample (tabular feature service, so no encoders run):
  1. the earliest 300 posts; a refresh (no champion yet: nothing measured); a deliberately weak
     recipe trained and promoted: champion v1, any sound recipe beats it on the metrics;
  2. the next 100 posts, drifted on purpose (their authors' counts x1000, videos 20x longer,
     a language and a location never seen): the refresh logs the drift; candidate v2 (a sound
     recipe, better than v1 on the metrics) is refused for the drift alone;
  3. the 100 posts after those, as they are: candidate v3 (validated on them) is not blocked
     and is promoted on its metrics.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from smp_platform.core.config import EncoderSettings, Settings
from smp_platform.infra.mlflow_registry import DRIFT_DIR, ModelRegistry
from smp_platform.modeling.promotion import PromotionDecision
from smp_platform.pipeline.refresh import RefreshSummary
from tests.helpers import fast_train_settings, write_subset

pytestmark = pytest.mark.integration

POSTS_FILE = "SMP-Video_anonymized_posts_train.jsonl"


def drifted_copy(src: Path, out: Path, skip: set[str]) -> Path:
    """The posts of ``src`` not in ``skip``, with new authors whose counts are 1000x, videos
    and music 20x longer, and a language and a location the training posts never had."""
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if "users" not in path.name:
            rows = [r for r in rows if r["pid"] not in skip]
        for row in rows:
            row["uid"] = row["uid"] + "X"
            if "posts" in path.name:
                row["post_text_language"], row["post_location"] = "zz", "ZZ"
            elif "users" in path.name:
                for key in [k for k in row if k.endswith("_count")]:
                    row[key] = (row[key] or 0) * 1000 + 7
            elif "videos" in path.name:
                row["video_duration"] = (row.get("video_duration") or 1) * 20
                row["music_duration"] = (row.get("music_duration") or 1) * 20
        (out / path.name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def _post_ids(directory: Path) -> set[str]:
    lines = (directory / POSTS_FILE).read_text().splitlines()
    return {json.loads(line)["pid"] for line in lines if line.strip()}


@dataclass
class Story:
    settings: Settings
    registry: ModelRegistry
    first_refresh: RefreshSummary
    drifted_refresh: RefreshSummary
    clean_refresh: RefreshSummary
    champion: str
    blocked: PromotionDecision
    passed: PromotionDecision
    drift_runs: list  # kind=drift runs, newest first


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> Iterator[Story]:
    from flows.promote import run_promote
    from flows.refresh import run_refresh
    from flows.train import run_train
    from smp_platform.pipeline.ingest import ingest

    root = tmp_path_factory.mktemp("drift")
    settings = Settings(
        data_dir=root / "data",
        feature_service="popularity_tabular_v1",
        encoders=EncoderSettings(text_model=None, perplexity_model=None),
        train=fast_train_settings(),
    )
    settings.ensure_dirs()
    weak = settings.model_copy(
        update={"train": fast_train_settings(iterations=2, depth=1, learning_rate=0.01)}
    )
    first = write_subset("train", root / "first", 300)
    ingest(settings, "smp-video", first)
    first_refresh = run_refresh(settings)
    champion = run_train(weak).version
    run_promote(settings, champion)

    second = write_subset("train", root / "second", 400)
    ingest(settings, "smp-video", drifted_copy(second, root / "drifted", _post_ids(first)))
    drifted_refresh = run_refresh(settings)
    blocked = run_promote(settings, run_train(settings).version)

    third = write_subset("train", root / "third", 500)
    ingest(settings, "smp-video", later_posts(third, root / "clean", _post_ids(second)))
    clean_refresh = run_refresh(settings)
    passed = run_promote(settings, run_train(settings).version)

    registry = ModelRegistry(settings)
    experiment = registry.client.get_experiment_by_name(settings.train.experiment)
    runs = registry.client.search_runs(
        [experiment.experiment_id], "tags.kind = 'drift'", order_by=["attributes.start_time DESC"]
    )
    yield Story(
        settings,
        registry,
        first_refresh,
        drifted_refresh,
        clean_refresh,
        champion,
        blocked,
        passed,
        runs,
    )


def later_posts(src: Path, out: Path, skip: set[str]) -> Path:
    """The posts of ``src`` not in ``skip`` (with their users, videos, labels) unchanged."""
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if "users" not in path.name:
            rows = [r for r in rows if r["pid"] not in skip]
        (out / path.name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def test_a_refresh_without_a_champion_measures_nothing_and_says_so(story: Story) -> None:
    assert story.first_refresh.drift == "not measured: no champion yet"
    assert "drift: not measured: no champion yet" in str(story.first_refresh)
    assert len(story.drift_runs) == 2  # the two refreshes that had a champion


def test_training_logs_the_reference_profile_of_its_frame(story: Story) -> None:
    profile = story.registry.reference_profile(story.champion)
    assert profile is not None
    assert profile["n_rows"] == 300
    features = profile["features"]
    assert features["language"]["kind"] == "categorical"
    assert "zz" not in features["language"]["known"]
    assert features["author_follower_count_log"]["kind"] == "numeric"
    assert sum(features["media_duration"]["shares"]) + features["media_duration"][
        "null_share"
    ] == pytest.approx(1.0)


def test_the_refresh_logs_the_drift_table_and_plot_to_mlflow(story: Story, tmp_path) -> None:
    drifted_run = story.drift_runs[1]  # the older of the two: the drifted batch
    assert drifted_run.data.tags["source"] == "refresh"
    assert drifted_run.data.tags["champion_version"] == story.champion
    assert drifted_run.data.tags["drift_beyond_bound"] == "true"
    client = story.registry.client
    names = {Path(a.path).name for a in client.list_artifacts(drifted_run.info.run_id, DRIFT_DIR)}
    assert names == {"drift.csv", "drift.json", "drift.png"}
    local = Path(client.download_artifacts(drifted_run.info.run_id, DRIFT_DIR, str(tmp_path)))
    assert (local / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(local / "drift.csv").set_index("feature")
    assert table.loc["language", "unseen_share"] == pytest.approx(1.0)
    assert table.loc["language", "unseen_examples"] == "zz"
    assert table.loc["author_follower_count_log", "psi"] > 1.0
    assert bool(table.loc["media_duration", "drifted"])
    # the posts' publication time is never counted (a new batch is always later)
    assert "post_epoch_days" not in table.index
    assert drifted_run.data.metrics["drift_batch_posts"] == 100
    assert story.drifted_refresh.drift.startswith(
        f"{len(table[table['drifted']])} of {len(table)} features with PSI > 0.25"
    )


def test_a_drifted_validation_window_blocks_a_promotion_the_metrics_would_allow(
    story: Story,
) -> None:
    decision = story.blocked
    assert not decision.promoted
    assert decision.champion_version == story.champion
    # the sound recipe beats the weak champion's on the same posts: only the drift refused it
    assert decision.champion_metrics is not None
    assert decision.candidate_metrics["src"] > decision.champion_metrics["src"]
    assert decision.reason.startswith("validation posts drifted beyond the bound: ")
    assert "; and " not in decision.reason
    report = decision.drift_report
    assert report is not None and report.beyond_bound
    assert {"language", "location", "media_duration"} <= set(report.drifted)
    # logged like every decision: tags on the version, a promotion run with the drift files
    client = story.registry.client
    version = client.get_model_version(story.settings.train.model_name, decision.candidate_version)
    assert version.tags["promotion_decision"] == "refused"
    assert version.tags["promotion_reason"] == decision.reason
    assert version.tags["promotion_drift"] == decision.drift
    experiment = client.get_experiment_by_name(story.settings.train.experiment)
    (run,) = client.search_runs(
        [experiment.experiment_id],
        f"tags.kind = 'promotion' and attributes.run_name = "
        f"'promote-{story.settings.train.model_name}-v{decision.candidate_version}'",
    )
    assert run.data.tags["promotion_reason"] == decision.reason
    names = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, DRIFT_DIR)}
    assert {"drift.csv", "drift.png"} <= names
    assert run.data.metrics["drift_drifted_share"] > story.settings.drift.max_drifted_share


def test_a_validation_window_like_the_training_posts_does_not_block(story: Story) -> None:
    decision = story.passed
    assert decision.drift_report is not None
    assert not decision.drift_report.beyond_bound, decision.drift
    assert f"vs champion v{story.champion}'s training frame" in decision.drift
    assert decision.promoted, decision.reason
    assert story.registry.champion()[0] == decision.candidate_version
    latest = story.drift_runs[0]
    assert latest.data.tags["drift_beyond_bound"] == "false", latest.data.tags["drift_summary"]


def test_smp_report_shows_the_latest_drift(story: Story) -> None:
    from typer.testing import CliRunner

    from smp_platform.cli import app

    result = CliRunner().invoke(
        app, ["--data-dir", str(story.settings.root), "report", "--drift"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "drift of the latest refresh" in result.output
    assert "within the bound" in result.output  # the clean batch was the latest
    assert "author_follower_count_log" in result.output
    plot = Path(result.output.split("drift plot: ")[1].strip())
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_the_drift_gate_reports_but_does_not_block_when_told_not_to(story: Story) -> None:
    """The gate of the refused promotion, re-run: with ``drift.block_promotion`` off it still
    measures and says so; a batch under ``min_posts`` never blocks; a champion without a
    reference profile is not measured and never blocks."""
    from smp_platform.features.registry import groups_for
    from smp_platform.pipeline.frames import labelled_frame
    from smp_platform.pipeline.monitor import ChampionReference, validation_drift
    from smp_platform.pipeline.promote import BacktestComparison, validation_drift_gate

    settings = story.settings
    service = settings.feature_service

    def gate(drift_changes: dict[str, object]):  # type: ignore[no-untyped-def]
        changed = settings.model_copy(
            update={"drift": settings.drift.model_copy(update=drift_changes)}
        )
        comparison = BacktestComparison(
            story.registry,
            story.blocked.candidate_version,
            lambda name: labelled_frame(changed, name),
            groups_for(changed),
        )
        return validation_drift_gate(changed, story.registry, comparison, story.champion, service)

    report, line, blocks = gate({})
    assert report is not None and report.beyond_bound and blocks  # as in the promotion
    report, line, blocks = gate({"block_promotion": False})
    assert report is not None and report.beyond_bound and not blocks
    assert line.endswith("[not blocking: drift.block_promotion is off]")
    report, line, blocks = gate({"min_posts": 10_000})
    assert report is not None and report.too_small and not report.beyond_bound and not blocks
    assert "[fewer than 10000 posts: reported, never blocking]" in line
    no_profile = ChampionReference(story.champion, service, None)
    report, line = validation_drift(settings, no_profile, pd.DataFrame())
    assert report is None and "has no reference profile" in line and "not blocking" in line
