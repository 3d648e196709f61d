"""Promote a candidate to ``@champion`` only if it beats the champion on the same posts."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.train import train_flow
from smp_platform.core.config import Settings, bound_settings, run_settings
from smp_platform.core.locking import writer_lock
from smp_platform.modeling.promotion import PromotionDecision
from smp_platform.pipeline.promote import promote_candidate


@flow(name="promote", log_prints=False)
def promote_flow(data_dir: str | None = None, version: str | None = None) -> PromotionDecision:
    """Settings come from the caller's ``bound_settings`` or the environment."""
    settings = run_settings(data_dir)
    with writer_lock(settings.root, "promote", settings.lock_timeout_s):
        decision = promote_candidate(settings, version)
    get_run_logger().info("promotion decision: %s", decision)
    return decision


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
