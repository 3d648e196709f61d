"""The train verb: point-in-time frame from Feast (:func:`~smp_platform.pipeline.frames.
labelled_frame`) -> backtest of the recipe on the time split -> the same recipe refitted on ALL
labelled posts -> registered version (with the backtest's metrics, its recipe and its training
cutoff) and its drift reference profile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from smp_platform.core.config import Settings, TrainSettings
from smp_platform.core.errors import UserError
from smp_platform.features.registry import groups_for
from smp_platform.infra.mlflow_registry import ModelRegistry
from smp_platform.modeling.fit import backtest_then_refit, time_split
from smp_platform.modeling.recipe import apply_recipe, load_recipe, recipe_columns, recipe_path
from smp_platform.pipeline.frames import feature_spec, labelled_frame, served_columns
from smp_platform.pipeline.monitor import log_reference_profile

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


def train_settings(settings: Settings) -> tuple[TrainSettings, str]:
    """The recipe ``train`` uses: the one ``smp tune`` saved in the data dir, else settings."""
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

    recipe, source = train_settings(settings)
    train, valid = time_split(frame, recipe.validation_fraction)
    if len(train) < 20 or len(valid) < 5:
        raise UserError(f"too few labelled posts to train ({len(frame)}); load more data")
    groups = groups_for(settings)
    columns = recipe_columns(served_columns(settings, service), recipe, groups.view_of)
    tested, refit = backtest_then_refit(frame, recipe, feature_spec(groups, columns))
    registry = ModelRegistry(settings)
    candidate = registry.log_and_register(
        refit,
        tested.valid,
        backtest=tested,
        feature_service=service,
        run_name=f"train-{datetime.now(UTC):%Y%m%dT%H%M%S}",
        recipe_source=source,
        # what drift is measured against while this version is champion (README, "Drift");
        # logged before the version's model card is written, which names it
        log_profile=lambda run_id: log_reference_profile(registry, run_id, frame, refit),
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
        n_train=tested.trained.n_train,
        n_valid=len(tested.valid),
        n_registered=refit.n_train,
        recipe_source=source,
    )
