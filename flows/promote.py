"""Promote a candidate to ``@champion`` only if it beats the champion on the same posts.

Each decision is also a markdown artifact of its flow run (key ``promotion-<model>``), so the
person reading the nightly run in Prefect's UI sees both scores and the reason without opening
MLflow.
"""

from __future__ import annotations

import re

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.train import train_flow
from smp_platform.core.config import Settings, bound_settings, run_settings
from smp_platform.core.locking import writer_lock
from smp_platform.core.logs import use_log_format
from smp_platform.modeling.promotion import PromotionDecision
from smp_platform.pipeline.promote import promote_candidate


@flow(name="promote", log_prints=False)
def promote_flow(data_dir: str | None = None, version: str | None = None) -> PromotionDecision:
    """Settings come from the caller's ``bound_settings`` or the environment."""
    settings = run_settings(data_dir)
    use_log_format(settings.log_format)
    with writer_lock(settings.root, "promote", settings.lock_timeout_s):
        decision = promote_candidate(settings, version)
    get_run_logger().info("promotion decision: %s", decision)
    model = settings.train.model_name
    create_markdown_artifact(
        markdown=decision_markdown(decision, model),
        key=artifact_key(model),
        description=f"promotion decision of {model} v{decision.candidate_version}",
    )
    return decision


def artifact_key(model_name: str) -> str:
    """Prefect keys take lowercase letters, digits and dashes only."""
    return "promotion-" + (re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-") or "model")


def decision_markdown(decision: PromotionDecision, model_name: str) -> str:
    """The decision as a reader of the flow run wants it: verdict, reason, both scores."""
    verdict = "promoted to @champion" if decision.promoted else "not promoted"
    rows = [("candidate", decision.candidate_version, decision.candidate_metrics)]
    if decision.champion_version is not None and decision.champion_metrics is not None:
        rows.append(("champion", decision.champion_version, decision.champion_metrics))
    lines = [
        f"# {model_name} v{decision.candidate_version}: {verdict}",
        "",
        f"**Reason:** {decision.reason}",
        "",
        "| | version | SRC | MAE |",
        "|---|---|---:|---:|",
        *(
            f"| {role} | v{version} | {scores['src']:.4f} | {scores['mae']:.4f} |"
            for role, version, scores in rows
        ),
    ]
    if decision.champion_version is None:
        lines.append("| champion | (none) | | |")
    if decision.comparison:
        lines += ["", f"**Scored:** {decision.comparison}"]
    if decision.drift:
        lines += ["", f"**Drift:** {decision.drift}"]
    return "\n".join(lines)


@flow(name="train-and-promote", log_prints=False)
def train_and_promote_flow(data_dir: str | None = None) -> PromotionDecision:
    """The nightly model job, run after the feature refresh."""
    settings = run_settings(data_dir)
    with writer_lock(settings.root, "train-and-promote", settings.lock_timeout_s):
        outcome = train_flow(data_dir)
        return promote_flow(data_dir, outcome.version)


def run_promote(settings: Settings, version: str | None = None) -> PromotionDecision:
    """The promote flow with these settings, bound in this process (not a flow parameter)."""
    with bound_settings(settings):
        return promote_flow(data_dir=str(settings.root), version=version)
