"""Train a candidate from the offline store (point in time) and register it in MLflow."""

from __future__ import annotations

from prefect import flow, get_run_logger

from smp_platform.core.config import Settings, bound_settings, run_settings
from smp_platform.core.locking import writer_lock
from smp_platform.core.logs import use_log_format
from smp_platform.pipeline.train import TrainOutcome, train_candidate


@flow(name="train", log_prints=False)
def train_flow(data_dir: str | None = None) -> TrainOutcome:
    """Labels -> entity frame -> get_historical_features -> adapter + CatBoost -> MLflow.

    Settings come from the caller's ``bound_settings`` or the environment (never a parameter).
    """
    settings = run_settings(data_dir)
    use_log_format(settings.log_format)
    with writer_lock(settings.root, "train", settings.lock_timeout_s):
        outcome = train_candidate(settings)
    get_run_logger().info("train done: %s", outcome)
    return outcome


def run_train(settings: Settings) -> TrainOutcome:
    """The train flow with these settings, bound in this process (not a flow parameter)."""
    with bound_settings(settings):
        return train_flow(data_dir=str(settings.root))
