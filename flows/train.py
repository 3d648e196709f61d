"""Train a candidate from the offline store (point in time) and register it in MLflow."""

from __future__ import annotations

from prefect import flow, get_run_logger

from smp_platform.config import Settings
from smp_platform.train import TrainOutcome, train_candidate


@flow(name="train", log_prints=False)
def train_flow(settings: Settings | None = None) -> TrainOutcome:
    """Labels -> entity frame -> get_historical_features -> adapter + CatBoost -> MLflow."""
    settings = settings or Settings()  # a deployment run: from SMP_* env
    outcome = train_candidate(settings)
    get_run_logger().info("train done: %s", outcome)
    return outcome
