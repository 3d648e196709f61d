"""Promote a candidate to ``@champion`` only if it beats the champion on the same posts."""

from __future__ import annotations

from prefect import flow, get_run_logger

from smp_platform.config import Settings
from smp_platform.modeling.promotion import PromotionDecision
from smp_platform.promote import promote_candidate


@flow(name="promote", log_prints=False)
def promote_flow(settings: Settings | None = None, version: str | None = None) -> PromotionDecision:
    settings = settings or Settings()  # a deployment run: from SMP_* env
    decision = promote_candidate(settings, version)
    get_run_logger().info("promotion decision: %s", decision)
    return decision


@flow(name="train-and-promote", log_prints=False)
def train_and_promote_flow(settings: Settings | None = None) -> PromotionDecision:
    """The nightly model job, run after the feature refresh."""
    settings = settings or Settings()  # a deployment run: from SMP_* env
    from flows.train import train_flow

    outcome = train_flow(settings)
    return promote_flow(settings, outcome.version)
