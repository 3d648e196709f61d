"""Train, promote, predict, evaluate: the platform's side of ``smp_platform.modeling``.

Frames come from Feast (``smp_platform.datasets``); models go to and come from the MLflow
registry named in settings. The flows in ``flows/`` call these functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from smp_platform.config import Settings
from smp_platform.datasets import labelled_frame, posts_frame, service_feature_columns
from smp_platform.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    version: str
    run_id: str
    feature_service: str
    metrics: dict[str, float]
    baseline: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_valid: int = 0

    def __str__(self) -> str:
        return (
            f"version {self.version} of the model trained on {self.n_train:,} posts; "
            f"validation ({self.n_valid:,} latest posts): SRC {self.metrics['src']:.3f}, "
            f"MAE {self.metrics['mae']:.3f} "
            f"(median baseline MAE {self.baseline.get('mae', float('nan')):.3f})"
        )


def _client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )


def _artifact_location(settings: Settings) -> str | None:
    # An MLflow server (compose) decides where artifacts live; a database backend needs one.
    if settings.mlflow_tracking_uri.startswith(("http://", "https://")):
        return None
    return settings.mlflow_artifact_root


def train_candidate(settings: Settings) -> TrainOutcome:
    """Point-in-time frame, time split, cross-fitted adapter + CatBoost, registered version."""
    from smp_platform.modeling.registry import log_and_register
    from smp_platform.modeling.train import time_split, train_model

    service = settings.feature_service
    frame = labelled_frame(settings, service)
    train, valid = time_split(frame, settings.train.validation_fraction)
    if len(train) < 20 or len(valid) < 5:
        raise UserError(f"too few labelled posts to train ({len(frame)}); load more data")
    trained = train_model(train, settings.train, service_feature_columns(service))
    candidate = log_and_register(
        trained,
        valid,
        settings.train,
        tracking_uri=settings.mlflow_tracking_uri,
        feature_service=service,
        run_name=f"train-{datetime.now(UTC):%Y%m%dT%H%M%S}",
        artifact_location=_artifact_location(settings),
    )
    scores = candidate.metrics
    return TrainOutcome(
        version=str(candidate.version),
        run_id=candidate.run_id,
        feature_service=service,
        metrics={"src": scores["src"], "mae": scores["mae"]},
        baseline={
            "src": scores.get("baseline_src", float("nan")),
            "mae": scores.get("baseline_mae", float("nan")),
        },
        n_train=len(train),
        n_valid=len(valid),
    )


def _latest_version(settings: Settings) -> str:
    versions = _client(settings).search_model_versions(f"name = '{settings.train.model_name}'")
    if not versions:
        raise UserError(f"no registered versions of {settings.train.model_name}: run `smp train`")
    return str(max(int(v.version) for v in versions))


def promote_candidate(settings: Settings, version: str | None = None) -> Any:
    """Candidate vs ``@champion`` on the same validation posts (each read through its own
    feature service); the alias moves only if the candidate is better."""
    from smp_platform.modeling.registry import evaluate_version, promote
    from smp_platform.modeling.train import time_split

    client = _client(settings)
    name = settings.train.model_name
    version = version or _latest_version(settings)
    frames: dict[str, pd.DataFrame] = {}

    def validation_frame(service: str) -> pd.DataFrame:
        if service not in frames:
            _, frames[service] = time_split(
                labelled_frame(settings, service), settings.train.validation_fraction
            )
        return frames[service]

    def evaluate(v: str) -> dict[str, float]:
        service = client.get_model_version(name, v).tags.get("feature_service")
        frame = validation_frame(service or settings.feature_service)
        return evaluate_version(settings.mlflow_tracking_uri, name, v, frame)

    return promote(client, name, str(version), evaluate)


def current_champion(settings: Settings) -> tuple[str, str] | None:
    """(version, feature service) of ``@champion``, or None."""
    from smp_platform.modeling.registry import champion

    return champion(_client(settings), settings.train.model_name)


def load_model(settings: Settings, version: str) -> tuple[Any, list[str]]:
    """A registered version's pyfunc and the feature columns its signature declares."""
    from smp_platform.modeling.registry import load_version

    model = load_version(settings.mlflow_tracking_uri, settings.train.model_name, version)
    schema = model.metadata.get_input_schema()
    return model, list(schema.input_names()) if schema else []


def predict_posts(settings: Settings, post_ids: list[str]) -> pd.DataFrame:
    """The champion's predictions for posts, from the offline store (batch path)."""
    found = current_champion(settings)
    if found is None:
        raise UserError(
            f"no @champion of {settings.train.model_name}: run `smp train` and `smp promote` first"
        )
    version, service = found
    model, columns = load_model(settings, version)
    frame = posts_frame(settings, post_ids, service or settings.feature_service)
    inputs = frame[[c for c in columns if c in frame.columns]] if columns else frame
    frame["popularity"] = pd.Series(model.predict(inputs)).to_numpy(dtype=float)
    return frame[["post_id", "popularity"]].assign(model_version=version)


def run_ablation_table(settings: Settings) -> str:
    """The paper's ablation on the time-split validation posts, logged to MLflow."""
    from smp_platform.modeling.ablation import format_ablation, run_ablation

    frame = labelled_frame(settings, "popularity_v1")
    table = run_ablation(frame, settings.train, settings.mlflow_tracking_uri)
    return format_ablation(table)


def write_reports(settings: Settings) -> list[Path]:
    """The paper's figures for the current data, logged to MLflow as a run of their own."""
    import mlflow
    from smp_platform.modeling.registry import tracking
    from smp_platform.modeling.report import write_report
    from smp_platform.modeling.train import time_split, train_model

    frame = labelled_frame(settings, "popularity_v1")
    train, _ = time_split(frame, settings.train.validation_fraction)
    trained = train_model(train, settings.train, service_feature_columns("popularity_v1"))
    paths = write_report(frame, trained, settings.reports_dir)
    # tracking() puts MLflow's global URIs back afterwards (set_tracking_uri alone leaks them).
    with tracking(settings.mlflow_tracking_uri):
        mlflow.set_experiment(settings.train.experiment)
        with mlflow.start_run(run_name=f"report-{datetime.now(UTC):%Y%m%dT%H%M%S}"):
            for path in paths:
                mlflow.log_artifact(str(path), artifact_path="report")
    return paths
