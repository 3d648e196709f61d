"""Operating ``@champion`` on the trained platform: ``smp champion set`` / ``rollback`` move the
alias and the running service follows each within a poll; ``history`` lists every move with its
reason from MLflow alone; a rollback with no earlier holder and a set of an unknown version
fail with exit 2. Also: a registered version's description is its model card, and a promotion
flow run publishes its decision as a Prefect markdown artifact. Real MLflow, Feast, Prefect.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from smp_platform.infra.mlflow_registry import CHAMPION_SINCE_TAG, ChampionMove, ModelRegistry

pytestmark = pytest.mark.integration

POLL_SECONDS = 0.5
# A poll plus loading and compiling one model: measured 0.1-0.2 s on two busy cores; the bound
# leaves room for a slow disk, the deadline only stops the wait.
FOLLOW_BOUND_S = POLL_SECONDS + 15.0
FOLLOW_DEADLINE_S = 60.0
SET_REASON = "v1 answers 500s for posts without tags (ticket OPS-17)"
ROLLBACK_REASON = "v2 ranks worse on the live sample than v1 did"


@dataclass
class Story:
    settings: Any
    registry: ModelRegistry
    first: str  # the platform's champion (v1, promoted by the session fixture)
    second: Any  # TrainOutcome of a weak second version
    decision: Any  # the promotion flow's decision on the second version (refused)
    flow_run_id: Any
    first_since_before: str | None  # v1's champion_since from its promotion
    no_previous: subprocess.CompletedProcess[str]
    unknown: subprocess.CompletedProcess[str]
    set_run: subprocess.CompletedProcess[str]
    rollback_run: subprocess.CompletedProcess[str]
    served: list[tuple[str, float]]  # (served version, seconds after the move's command ended)
    history: subprocess.CompletedProcess[str]
    show: subprocess.CompletedProcess[str]
    moves: list[ChampionMove]


def _smp(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smp_platform.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _served_version(url: str, post_id: str) -> str:
    return str(
        httpx.get(f"{url}/v1/posts/{post_id}/popularity", timeout=30).json().get("model_version")
    )


def _follow(url: str, post_id: str, expected: str) -> tuple[str, float]:
    """Ask the service until it serves ``expected`` (or the deadline): (served, seconds)."""
    started = time.monotonic()
    served = _served_version(url, post_id)
    while served != expected and time.monotonic() - started < FOLLOW_DEADLINE_S:
        time.sleep(0.1)
        served = _served_version(url, post_id)
    return served, time.monotonic() - started


@pytest.fixture(scope="module")
def story(platform, tmp_path_factory: pytest.TempPathFactory) -> Story:  # type: ignore[no-untyped-def]
    from flows.promote import promote_flow
    from smp_platform.core.config import bound_settings
    from smp_platform.pipeline.train import train_candidate
    from smp_platform.service.runner import running_service

    # a private copy of the platform's data dir (as ``platform_copy``): this story moves the alias
    root = tmp_path_factory.mktemp("champion") / "data"
    shutil.copytree(platform.settings.root, root, ignore=shutil.ignore_patterns("mlartifacts"))
    settings = platform.settings.model_copy(update={"data_dir": root})
    registry = ModelRegistry(settings)
    first, _ = registry.require_champion()
    first_since = registry.tags(first).get(CHAMPION_SINCE_TAG)
    no_previous = _smp(root, "champion", "rollback", "--reason", "nothing to go back to")
    unknown = _smp(root, "champion", "set", "999", "--reason", "no such version")
    # 2 trees of depth 1: a cheap second version that cannot win a promotion
    weak = settings.model_copy(
        update={"train": settings.train.model_copy(update={"iterations": 2, "depth": 1})}
    )
    second = train_candidate(weak)
    with bound_settings(settings):
        state = promote_flow(data_dir=str(root), version=second.version, return_state=True)
    decision = state.result()
    post_id = pd.read_json(next(platform.train_dir.glob("*posts*")), lines=True)["pid"].iloc[0]
    served = []
    with running_service(settings, poll_seconds=POLL_SECONDS) as url:
        served.append(_follow(url, str(post_id), first))
        set_run = _smp(root, "champion", "set", second.version, "--reason", SET_REASON)
        served.append(_follow(url, str(post_id), second.version))
        rollback_run = _smp(root, "champion", "rollback", "--reason", ROLLBACK_REASON)
        served.append(_follow(url, str(post_id), first))
    return Story(
        settings=settings,
        registry=registry,
        first=first,
        second=second,
        decision=decision,
        flow_run_id=state.state_details.flow_run_id,
        first_since_before=first_since,
        no_previous=no_previous,
        unknown=unknown,
        set_run=set_run,
        rollback_run=rollback_run,
        served=served,
        history=_smp(root, "champion", "history"),
        show=_smp(root, "champion", "show"),
        moves=registry.champion_moves(),
    )


def test_a_rollback_with_no_earlier_holder_and_an_unknown_version_exit_2(story: Story) -> None:
    assert story.no_previous.returncode == 2, story.no_previous.stderr
    assert "first champion" in story.no_previous.stderr
    assert "nothing to roll back to" in story.no_previous.stderr
    assert story.unknown.returncode == 2, story.unknown.stderr
    assert "no version '999'" in story.unknown.stderr
    assert f"registered: {story.first}" in story.unknown.stderr
    assert "Traceback" not in story.no_previous.stderr + story.unknown.stderr


def test_the_service_follows_set_and_rollback_within_a_poll(story: Story) -> None:
    assert story.set_run.returncode == 0, story.set_run.stderr
    assert story.rollback_run.returncode == 0, story.rollback_run.stderr
    assert f"v{story.first} -> v{story.second.version}" in story.set_run.stdout
    assert f"v{story.second.version} -> v{story.first}" in story.rollback_run.stdout
    (before, _), (after_set, set_s), (after_rollback, rollback_s) = story.served
    assert before == story.first
    assert after_set == story.second.version != story.first
    assert after_rollback == story.first
    # within the poll interval plus one model load, never a restart
    assert set_s < FOLLOW_BOUND_S and rollback_s < FOLLOW_BOUND_S, story.served
    assert story.registry.champion() == (story.first, story.second.feature_service)


def test_history_lists_every_move_newest_first_with_reasons_and_scores(story: Story) -> None:
    first, second = story.first, story.second.version
    kinds = [(m.kind, m.from_version, m.to_version) for m in story.moves]
    # the refused promotion of the weak version moved nothing, so it is not a move
    assert kinds == [
        ("rollback", second, first),
        ("set", first, second),
        ("promotion", None, first),
    ]
    rollback, manual, promotion = story.moves
    assert (rollback.reason, manual.reason) == (ROLLBACK_REASON, SET_REASON)
    assert promotion.reason.startswith("first champion")
    assert rollback.at > manual.at > promotion.at
    # a move by hand logs each version's own recorded backtest
    assert manual.to_metrics["src"] == pytest.approx(story.second.metrics["src"])
    assert manual.to_metrics["mae"] == pytest.approx(story.second.metrics["mae"])
    assert rollback.from_metrics == manual.to_metrics
    assert promotion.to_metrics == manual.from_metrics  # v1's backtest, recorded at promotion
    out = story.history.stdout
    assert story.history.returncode == 0, story.history.stderr
    assert out.index(ROLLBACK_REASON) < out.index(SET_REASON) < out.index("first champion")
    assert f"rollback   v{second} -> v{first}" in out
    assert f"set        v{first} -> v{second}" in out
    assert f"SRC {story.second.metrics['src']:.3f}, MAE {story.second.metrics['mae']:.3f}" in out


def test_champion_since_is_tagged_on_every_move_including_the_promotion(story: Story) -> None:
    assert story.first_since_before is not None  # the session's promotion tagged v1
    second_since = datetime.fromisoformat(
        story.registry.tags(story.second.version)[CHAMPION_SINCE_TAG]
    )
    first_since = datetime.fromisoformat(story.registry.tags(story.first)[CHAMPION_SINCE_TAG])
    assert second_since.utcoffset() is not None and second_since.utcoffset().total_seconds() == 0
    assert datetime.fromisoformat(story.first_since_before) < second_since < first_since
    rollback = story.moves[0]
    assert rollback.at == first_since  # the history's time is the tag's
    shown = story.show.stdout
    assert story.show.returncode == 0, story.show.stderr
    assert f"version {story.first} (feature service {story.second.feature_service})" in shown
    assert (
        f"since: {first_since:%Y-%m-%d %H:%M:%S} UTC by rollback from v{story.second.version}"
        in shown
    )
    assert f"reason: {ROLLBACK_REASON}" in shown


def test_a_registered_version_is_described_by_its_model_card(story: Story) -> None:
    client = story.registry.client
    version = client.get_model_version(story.registry.name, story.second.version)
    params = client.get_run(version.run_id).data.params
    card, tags, second = version.description, version.tags, story.second
    heading = f"## {story.registry.name} v{second.version}: model card (run `{version.run_id}`)"
    assert card.startswith(heading)
    # the data window: the first and last post the registered model was fitted on, and counts
    assert f"| {second.n_registered:,} | {params['train_start']} | {params['train_end']} |" in card
    assert f"| backtest training | {second.n_train:,} |" in card
    assert f"| backtest validation | {second.n_valid:,} | {tags['validation_start']} |" in card
    assert f"`{second.feature_service}`" in card
    assert "iterations=2" in card and "depth=1" in card and "loss_function=MAE" in card
    assert f"| SRC | {second.metrics['src']:.4f} | {second.baseline['src']:.4f} |" in card
    assert f"| MAE | {second.metrics['mae']:.4f} | {second.baseline['mae']:.4f} |" in card
    assert f"`drift/reference_profile.json` in run `{version.run_id}`" in card
    assert story.registry.reference_profile(second.version) is not None  # it names a real one


def test_the_promotion_flow_publishes_its_decision_as_a_markdown_artifact(story: Story) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.promote import artifact_key

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[story.flow_run_id])
            )
        )
    (artifact,) = artifacts
    decision = story.decision
    assert not decision.promoted and decision.champion_metrics is not None
    assert artifact.type == "markdown"
    assert artifact.key == artifact_key(story.registry.name) == "promotion-smp-popularity"
    body = str(artifact.data)
    assert f"v{decision.candidate_version}: not promoted" in body
    assert decision.reason in body
    for role, version, scores in (
        ("candidate", decision.candidate_version, decision.candidate_metrics),
        ("champion", decision.champion_version, decision.champion_metrics),
    ):
        assert f"| {role} | v{version} | {scores['src']:.4f} | {scores['mae']:.4f} |" in body


def test_artifact_keys_take_only_what_prefect_allows() -> None:
    from flows.promote import artifact_key

    assert artifact_key("SMP_Popularity v2") == "promotion-smp-popularity-v2"
    assert artifact_key("__") == "promotion-model"
