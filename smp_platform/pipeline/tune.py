"""The tune verb: search a recipe on time-ordered folds inside the training posts, every trial a
child MLflow run, the best one saved as the data dir's recipe (``<data dir>/recipe.json``,
which ``train`` and ``evaluate`` use from then on) and its trial run tagged ``recipe=best``.

The search sees only the posts before the backtest's window (the newest
``validation_fraction`` of the labelled posts), so ``train``'s backtest of the tuned recipe
scores posts the search never looked at.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from smp_platform.core.config import Settings
from smp_platform.core.errors import UserError
from smp_platform.features.registry import groups_for
from smp_platform.infra.mlflow_registry import ModelRegistry
from smp_platform.modeling.fit import time_split
from smp_platform.modeling.recipe import save_recipe
from smp_platform.modeling.tuning import (
    SearchSpace,
    TrialResult,
    best_trial,
    prepare_folds,
    search,
)
from smp_platform.pipeline.frames import feature_spec, labelled_frame, served_columns
from smp_platform.pipeline.train import train_settings

log = logging.getLogger(__name__)

DEFAULT_TRIALS = 6  # 8 trials: 408 s on 3,200 posts and 2 busy cores; 6: ~5 min
DEFAULT_FOLDS = 2


@dataclass
class TuneOutcome:
    best: TrialResult
    start: TrialResult  # trial 0: the recipe in use before the search
    n_trials: int
    n_posts: int
    recipe_path: Path
    run_id: str

    def __str__(self) -> str:
        return (
            f"best of {self.n_trials} trial(s) on {self.n_posts:,} training posts: SRC "
            f"{self.best.src:.4f}, MAE {self.best.mae:.4f} (the recipe before: SRC "
            f"{self.start.src:.4f}, MAE {self.start.mae:.4f}); recipe {self.best.recipe} "
            f"saved to {self.recipe_path} (run {self.run_id})"
        )


def tune(
    settings: Settings,
    *,
    n_trials: int = DEFAULT_TRIALS,
    n_folds: int = DEFAULT_FOLDS,
    frame: pd.DataFrame | None = None,
    space: SearchSpace | None = None,
    seed: int = 0,
) -> TuneOutcome:
    """Search, log every trial, save the best recipe; ``frame`` defaults to the labelled frame
    of the configured feature service."""
    import mlflow

    service = settings.feature_service
    if frame is None:
        frame = labelled_frame(settings, service)
    recipe, source = train_settings(settings)
    train, _ = time_split(frame, recipe.validation_fraction)
    if len(train) < 100:
        raise UserError(f"too few labelled posts to tune a recipe ({len(frame)}); load more")
    groups = groups_for(settings)
    columns = served_columns(settings, service)
    folds = prepare_folds(train, recipe, feature_spec(groups, columns), n_folds=n_folds)
    space = space or SearchSpace()
    if space.optional_views is None:  # a trial may leave out the views declared optional
        optional = tuple(v.name for v in groups.views if v.optional)
        space = dataclasses.replace(space, optional_views=optional)
    registry = ModelRegistry(settings)
    trial_runs: dict[int, str] = {}
    with registry.run(f"tune-{datetime.now(UTC):%Y%m%dT%H%M%S}") as parent:
        mlflow.set_tags({"kind": "recipe-search", "feature_service": service})
        mlflow.log_params(
            {
                "n_trials": n_trials,
                "n_folds": n_folds,
                "n_posts": len(train),
                "start_recipe": source,
                "objective": "mean SRC - mean MAE over the folds",
            }
        )

        def log_trial(result: TrialResult) -> None:
            with registry.child_run(parent, f"trial-{result.number}") as run:
                params = {k: v for k, v in result.recipe.items() if k != "exclude_views"}
                params["exclude_views"] = ",".join(result.recipe["exclude_views"]) or "-"
                mlflow.log_params(params)
                mlflow.log_metrics({"score": result.score, "src": result.src, "mae": result.mae})
                for i, fold in enumerate(result.folds):
                    mlflow.log_metrics({f"fold{i}_src": fold["src"], f"fold{i}_mae": fold["mae"]})
                trial_runs[result.number] = run.info.run_id

        results = search(
            folds,
            recipe,
            columns,
            view_of=groups.view_of,
            n_trials=n_trials,
            space=space,
            seed=seed,
            on_trial=log_trial,
        )
        best = best_trial(results)
        start = results[0]
        mlflow.log_metrics(
            {
                "best_src": best.src,
                "best_mae": best.mae,
                "start_src": start.src,
                "start_mae": start.mae,
            }
        )
        mlflow.set_tag("recipe", json.dumps(best.recipe))
        mlflow.log_dict(best.recipe, "recipe.json")
        registry.client.set_tag(trial_runs[best.number], "recipe", "best")
    path = save_recipe(
        settings.root,
        best.recipe,
        src=best.src,
        mae=best.mae,
        score=best.score,
        n_posts=len(train),
        n_trials=len(results),
        run_id=parent.info.run_id,
    )
    log.info("tuned recipe saved to %s", path)
    return TuneOutcome(best, start, len(results), len(train), path, parent.info.run_id)
