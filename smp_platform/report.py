"""The report verb: the paper's figures for the current data, written to the reports dir and
logged to MLflow as a run of their own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from smp_platform.config import Settings


def write_reports(settings: Settings) -> list[Path]:
    """PNG figures under ``<data dir>/reports`` (also logged to MLflow)."""
    import mlflow
    from smp_platform.modeling.report import write_report
    from smp_platform.modeling.train import time_split, train_model
    from smp_platform.registry import ModelRegistry
    from smp_platform.train import labelled_frame, served_columns

    service = settings.feature_service
    frame = labelled_frame(settings, service)
    train, _ = time_split(frame, settings.train.validation_fraction)
    trained = train_model(train, settings.train, served_columns(service))
    paths = write_report(frame, trained, settings.reports_dir)
    with ModelRegistry(settings).run(f"report-{datetime.now(UTC):%Y%m%dT%H%M%S}"):
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path="report")
    return paths
