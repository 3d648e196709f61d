"""MLflow: log a trained model as a run + registered version, and promote it by alias.

Promotion criterion (one rule, applied to metrics on the SAME validation posts): a candidate
becomes ``@champion`` when its SRC is strictly higher than the champion's AND its MAE is not
worse than the champion's by more than ``mae_tolerance`` (0.02 popularity units by default).
SRC is the challenge's ranking metric; the MAE guard stops a model that ranks slightly better
but is badly calibrated. The first version of a model becomes champion. Every decision is
written as tags on the candidate version and as an MLflow run, and logged.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pandas as pd

from smp_platform.modeling.evaluate import metrics, with_baseline
from smp_platform.modeling.features import LABEL, TIMESTAMP

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from mlflow import MlflowClient
    from smp_platform.config import TrainSettings
    from smp_platform.modeling.train import TrainedModel

log = logging.getLogger(__name__)

CHAMPION = "champion"
_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
MAE_TOLERANCE = 0.02
MODEL_NAME_IN_RUN = "model"
PROMOTION_CRITERION = "src_candidate > src_champion and mae_candidate <= mae_champion + tolerance"
REQUIREMENTS = ("mlflow", "catboost", "torch", "scikit-learn", "pandas", "numpy", "cloudpickle")


@dataclass(frozen=True)
class RegisteredCandidate:
    version: str
    run_id: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    reason: str
    candidate_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    candidate_version: str = ""
    champion_version: str | None = None  # the champion before the decision

    def __str__(self) -> str:
        verdict = "promoted to @champion" if self.promoted else "not promoted"
        scores = f"SRC {self.candidate_metrics['src']:.3f}, MAE {self.candidate_metrics['mae']:.3f}"
        if self.champion_metrics is not None and self.champion_version != self.candidate_version:
            scores += (
                f" vs champion v{self.champion_version} SRC "
                f"{self.champion_metrics['src']:.3f}, MAE {self.champion_metrics['mae']:.3f}"
            )
        return f"version {self.candidate_version} {verdict}: {self.reason} [{scores}]"


@contextlib.contextmanager
def tracking(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (tracking and registry) at ``tracking_uri`` for a block.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``; afterwards both the
    globals and the environment are put back as they were, so nothing leaks to later code.
    """
    import mlflow

    saved = {key: os.environ.get(key) for key in _URI_ENV}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        # an explicit URI always mirrors into the environment, so "unset + old env" restores it
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None unsets (MLflow 3)
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def default_artifact_location(tracking_uri: str) -> str | None:
    """``mlartifacts/`` beside a SQLite tracking database; None (server default) otherwise."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    if not tracking_uri.startswith("sqlite:////"):
        database = database.resolve()
    return (database.parent / "mlartifacts").as_uri()


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The experiment's id, creating it (with its artifact location) if needed."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location))


def model_signature(trained: TrainedModel) -> ModelSignature:
    """Input schema built by hand from the feature kinds; every column optional.

    Numeric columns are ``Any``: MLflow refuses to "safely" convert int64 -> float64 and online
    reads give ints, floats or None for the same field. Embeddings are arrays of double (lists
    of Python floats and float32 arrays both pass). No input example is logged: MLflow would
    have to serialise the array columns and run the model at logging time for no gain.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, Array, ColSpec, Schema, TensorSpec

    spec = trained.model.matrix.spec
    inputs: list[ColSpec | TensorSpec] = [
        *(ColSpec(AnyType(), c, required=False) for c in spec.numeric),
        *(ColSpec("string", c, required=False) for c in spec.categorical),
        *(ColSpec(Array("double"), c, required=False) for c in spec.embedding),
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec("double", "popularity")]))


def _requirements() -> list[str]:
    pinned = []
    for package in REQUIREMENTS:
        try:
            pinned.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pinned.append(package)
    return pinned


def _window(frame: pd.DataFrame) -> tuple[str, str]:
    timestamps = pd.to_datetime(frame[TIMESTAMP], utc=True)
    return timestamps.min().isoformat(), timestamps.max().isoformat()


def log_and_register(
    trained: TrainedModel,
    valid_frame: pd.DataFrame,
    settings: TrainSettings,
    *,
    tracking_uri: str,
    feature_service: str,
    run_name: str,
    artifact_location: str | None = None,
) -> RegisteredCandidate:
    """Evaluate on the validation posts, log an MLflow run and register the pyfunc model.

    The version is tagged with its feature service (serving reads it), its validation metrics
    and the validation post window.
    """
    import mlflow
    from mlflow import MlflowClient
    from smp_platform.modeling.report import plot_feature_importance

    valid = valid_frame[valid_frame[LABEL].notna()]
    if valid.empty:
        raise ValueError("the validation frame has no labelled posts")
    scores = with_baseline(valid[LABEL], trained.predict(valid), trained.train_median)
    valid_start, valid_end = _window(valid)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment_id = ensure_experiment(
        client, settings.experiment, artifact_location or default_artifact_location(tracking_uri)
    )
    with (
        tracking(tracking_uri),
        mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run,
    ):
        mlflow.log_params(settings.model_dump())
        mlflow.log_params(
            {
                "n_train": trained.n_train,
                "n_valid": len(valid),
                "feature_service": feature_service,
                "feature_columns": ",".join(trained.feature_columns),
                "dropped_columns": ",".join(trained.model.matrix.dropped) or "-",
                "best_iteration": trained.best_iteration,
                "train_start": trained.train_start.isoformat(),
                "train_end": trained.train_end.isoformat(),
                "valid_start": valid_start,
                "valid_end": valid_end,
            }
        )
        mlflow.log_metrics({f"valid_{k}": v for k, v in scores.items()})
        mlflow.set_tags({"feature_service": feature_service, "model_name": settings.model_name})
        with tempfile.TemporaryDirectory() as scratch:
            directory = Path(scratch)
            mlflow.log_artifact(
                str(
                    plot_feature_importance(
                        trained.feature_importance, directory / "feature_importance.png"
                    )
                ),
                artifact_path="plots",
            )
            (directory / "feature_columns.json").write_text(json.dumps(trained.feature_columns))
            mlflow.log_artifact(str(directory / "feature_columns.json"))
            booster_path = trained.model.save_booster(directory)
            info = mlflow.pyfunc.log_model(
                name=MODEL_NAME_IN_RUN,
                python_model=trained.model,
                artifacts={"catboost": str(booster_path)},
                signature=model_signature(trained),
                pip_requirements=_requirements(),
                registered_model_name=settings.model_name,
            )
    version = str(info.registered_model_version)
    version_tags = {
        "feature_service": feature_service,
        "validation_src": f"{scores['src']:.6f}",
        "validation_mae": f"{scores['mae']:.6f}",
        "validation_start": valid_start,
        "validation_end": valid_end,
        "validation_n": str(len(valid)),
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(settings.model_name, version, key, value)
    log.info(
        "registered %s version %s (run %s): valid SRC %.4f, MAE %.4f (median baseline MAE %.4f)",
        settings.model_name,
        version,
        run.info.run_id,
        scores["src"],
        scores["mae"],
        scores["baseline_mae"],
    )
    return RegisteredCandidate(version=version, run_id=run.info.run_id, metrics=scores)


def load_version(tracking_uri: str, model_name: str, version: str) -> Any:
    """The pyfunc of one registered version (``models:/name/version``)."""
    import mlflow

    with tracking(tracking_uri):
        return mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")


def evaluate_version(
    tracking_uri: str, model_name: str, version: str, frame: pd.DataFrame
) -> dict[str, float]:
    """Metrics of a registered version on the labelled posts of ``frame``."""
    labelled = frame[frame[LABEL].notna()]
    model = load_version(tracking_uri, model_name, version)
    schema = model.metadata.get_input_schema()
    served = [c for c in schema.input_names() if c in labelled.columns] if schema else None
    return metrics(labelled[LABEL], model.predict(labelled[served] if served else labelled))


def champion(client: MlflowClient, model_name: str) -> tuple[str, str] | None:
    """(version, feature service) of ``@champion``, or None when there is none yet."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None
    return str(version.version), str(version.tags.get("feature_service", ""))


def _decide(
    candidate: dict[str, float], current: dict[str, float], mae_tolerance: float
) -> tuple[bool, str]:
    src_gain = candidate["src"] - current["src"]
    mae_loss = candidate["mae"] - current["mae"]
    numbers = (
        f"SRC {candidate['src']:.4f} vs {current['src']:.4f}, "
        f"MAE {candidate['mae']:.4f} vs {current['mae']:.4f}"
    )
    if src_gain <= 0:
        return False, f"SRC not higher than the champion's ({numbers})"
    if mae_loss > mae_tolerance:
        return False, f"MAE worse than the champion's by more than {mae_tolerance} ({numbers})"
    return True, f"higher SRC, MAE within tolerance {mae_tolerance} ({numbers})"


def promote(
    client: MlflowClient,
    model_name: str,
    candidate_version: str,
    evaluate_fn: Callable[[str], dict[str, float]],
    *,
    mae_tolerance: float = MAE_TOLERANCE,
) -> PromotionDecision:
    """Move ``@champion`` to the candidate if it beats the champion (see module docstring).

    ``evaluate_fn(version)`` must score every version on the same validation posts, e.g.
    ``lambda v: evaluate_version(uri, name, v, valid_frame)``.
    """
    candidate_version = str(candidate_version)
    candidate_metrics = evaluate_fn(candidate_version)
    current = champion(client, model_name)
    champion_version = current[0] if current else None
    champion_metrics = None
    if current is None:
        promoted, reason = True, "first champion: no version held the alias"
    elif champion_version == candidate_version:
        promoted, reason = False, "the candidate already is the champion"
        champion_metrics = candidate_metrics
    else:
        champion_metrics = evaluate_fn(str(champion_version))
        promoted, reason = _decide(candidate_metrics, champion_metrics, mae_tolerance)
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, candidate_version)
    decision = PromotionDecision(
        promoted=promoted,
        reason=reason,
        candidate_metrics=candidate_metrics,
        champion_metrics=champion_metrics,
        candidate_version=candidate_version,
        champion_version=champion_version,
    )
    _record(client, model_name, decision, mae_tolerance)
    log.info(
        "%s version %s %s: %s",
        model_name,
        candidate_version,
        "promoted to @champion" if promoted else "not promoted",
        reason,
    )
    return decision


def _record(
    client: MlflowClient, model_name: str, decision: PromotionDecision, mae_tolerance: float
) -> None:
    """Decision as tags on the candidate version and as a run in the candidate's experiment."""
    version = client.get_model_version(model_name, decision.candidate_version)
    tags = {
        "promotion_decision": "promoted" if decision.promoted else "refused",
        "promotion_reason": decision.reason,
        "promotion_compared_to": decision.champion_version or "-",
    }
    for key, value in tags.items():
        client.set_model_version_tag(model_name, decision.candidate_version, key, value)
    experiment_id = client.get_run(version.run_id).info.experiment_id if version.run_id else "0"
    run = client.create_run(
        experiment_id,
        run_name=f"promote-{model_name}-v{decision.candidate_version}",
        tags={"kind": "promotion", **tags},
    )
    params: dict[str, str | float] = {
        "model_name": model_name,
        "candidate_version": decision.candidate_version,
        "champion_version": decision.champion_version or "-",
        "criterion": PROMOTION_CRITERION,
        "mae_tolerance": mae_tolerance,
    }
    for key, param in params.items():
        client.log_param(run.info.run_id, key, param)
    for prefix, values in (
        ("candidate", decision.candidate_metrics),
        ("champion", decision.champion_metrics or {}),
    ):
        for key, metric in values.items():
            client.log_metric(run.info.run_id, f"{prefix}_{key}", float(metric))
    client.set_terminated(run.info.run_id)
