"""The train verb: point-in-time frame from Feast -> backtest of the recipe on the time split
-> the same recipe refitted on ALL labelled posts -> registered version (with the backtest's
metrics, its recipe and its training cutoff).

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
from smp_platform.core.config import Settings, TrainSettings
from smp_platform.core.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    version: str
    run_id: str
    feature_service: str
    metrics: dict[str, float]  # the backtest's, on the newest n_valid posts
    baseline: dict[str, float] = field(default_factory=dict)
    n_train: int = 0  # posts the backtest model was fitted on
    n_valid: int = 0
    n_registered: int = 0  # posts the registered model was fitted on (all labelled)
    recipe_source: str = "settings"

    def __str__(self) -> str:
        return (
            f"version {self.version} fitted on all {self.n_registered:,} labelled posts "
            f"(recipe: {self.recipe_source}); backtest (fitted on the older {self.n_train:,}, "
            f"scored on the newest {self.n_valid:,}): SRC {self.metrics['src']:.3f}, "
            f"MAE {self.metrics['mae']:.3f} (median baseline SRC "
            f"{self.baseline.get('src', float('nan')):.3f}, "
            f"MAE {self.baseline.get('mae', float('nan')):.3f})"
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
    from smp_platform.infra.feast_store import FeatureStoreGateway, rows_with_features
    from smp_platform.infra.warehouse import Warehouse

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
    from smp_platform.modeling.fit import time_split

    _, valid = time_split(
        labelled_frame(settings, service_name), settings.train.validation_fraction
    )
    return valid


def train_settings(settings: Settings) -> tuple[TrainSettings, str]:
    """The recipe ``train`` uses: the one ``smp tune`` saved in the data dir, else settings."""
    from smp_platform.modeling.recipe import apply_recipe, load_recipe, recipe_path

    recipe = load_recipe(settings.root)
    if recipe is None:
        return settings.train, "settings"
    return apply_recipe(settings.train, recipe), str(recipe_path(settings.root))


def train_candidate(settings: Settings) -> TrainOutcome:
    """Point-in-time frame, backtest, refit on all labelled posts, registered version."""
    service = settings.feature_service
    return train_on_frame(settings, labelled_frame(settings, service), service)


def train_on_frame(settings: Settings, frame: pd.DataFrame, service: str) -> TrainOutcome:
    """Backtest the recipe on ``frame``'s time split, refit it on all of ``frame``'s labelled
    posts, and register the refit with the backtest's metrics."""
    from smp_platform.infra.mlflow_registry import ModelRegistry
    from smp_platform.modeling.fit import backtest_then_refit, time_split
    from smp_platform.modeling.recipe import recipe_columns
    from smp_platform.pipeline.monitor import log_reference_profile

    recipe, source = train_settings(settings)
    train, valid = time_split(frame, recipe.validation_fraction)
    if len(train) < 20 or len(valid) < 5:
        raise UserError(f"too few labelled posts to train ({len(frame)}); load more data")
    columns = recipe_columns(served_columns(service), recipe)
    tested, refit = backtest_then_refit(frame, recipe, columns)
    registry = ModelRegistry(settings)
    candidate = registry.log_and_register(
        refit,
        tested.valid,
        backtest=tested,
        feature_service=service,
        run_name=f"train-{datetime.now(UTC):%Y%m%dT%H%M%S}",
        recipe_source=source,
    )
    # what drift is measured against while this version is champion (README, "Drift")
    log_reference_profile(registry, candidate.run_id, frame, refit)
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
        n_train=tested.trained.n_train,
        n_valid=len(tested.valid),
        n_registered=refit.n_train,
        recipe_source=source,
    )
