"""The train verb: point-in-time frame from Feast -> adapter + CatBoost -> registered version.

Also the one definition of "the labelled frame" (every labelled post with its features as of
its publication time), which promote, evaluate and report read too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from feature_repo.data_sources import EVENT_TIMESTAMP
from feature_repo.entities import POST_ID
from smp_platform.config import Settings
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


def served_columns(service_name: str) -> list[str]:
    """The feature columns a feature service serves (its projections), in a stable order."""
    from feature_repo.feature_services import service_spec

    try:
        return service_spec(service_name).columns
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from exc


def labelled_frame(settings: Settings, service_name: str | None = None) -> pd.DataFrame:
    """Every labelled post with its features as of its publication time, and its popularity."""
    from smp_platform.store import FeatureStoreGateway, rows_with_features
    from smp_platform.warehouse import Warehouse

    service_name = service_name or settings.feature_service
    columns = served_columns(service_name)
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        labels = warehouse.labels_frame()
    if labels.empty:
        raise UserError(
            "no labelled posts in the warehouse: run `smp ingest` on a dataset with labels first"
        )
    entities = labels.rename(columns={"posted_at": EVENT_TIMESTAMP})[[POST_ID, EVENT_TIMESTAMP]]
    frame = FeatureStoreGateway(settings).historical_features(entities, service_name)
    frame = frame.merge(labels[[POST_ID, "popularity"]], on=POST_ID, how="inner")
    known = rows_with_features(frame, columns)
    if not known.any():
        raise UserError("the labelled posts have no features yet: run `smp refresh` first")
    if not known.all():
        log.warning("%d labelled post(s) have no features yet and are left out", (~known).sum())
    frame = frame[known]
    return frame.sort_values([EVENT_TIMESTAMP, POST_ID]).reset_index(drop=True)


def validation_frame(settings: Settings, service_name: str | None = None) -> pd.DataFrame:
    """The latest ``validation_fraction`` of the labelled posts (the time split's holdout)."""
    from smp_platform.modeling.train import time_split

    _, valid = time_split(
        labelled_frame(settings, service_name), settings.train.validation_fraction
    )
    return valid


def train_candidate(settings: Settings) -> TrainOutcome:
    """Point-in-time frame, time split, cross-fitted adapter + CatBoost, registered version."""
    from smp_platform.modeling.train import time_split, train_model
    from smp_platform.registry import ModelRegistry

    service = settings.feature_service
    frame = labelled_frame(settings, service)
    train, valid = time_split(frame, settings.train.validation_fraction)
    if len(train) < 20 or len(valid) < 5:
        raise UserError(f"too few labelled posts to train ({len(frame)}); load more data")
    trained = train_model(train, settings.train, served_columns(service))
    candidate = ModelRegistry(settings).log_and_register(
        trained,
        valid,
        feature_service=service,
        run_name=f"train-{datetime.now(UTC):%Y%m%dT%H%M%S}",
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
