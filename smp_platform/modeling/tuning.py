"""The recipe search: Optuna (TPE) on time-ordered folds inside the training posts.

Each fold trains on the posts before a window and scores the window; the windows are the
newest blocks of the *training* posts, so the backtest's scored posts (the newest
``validation_fraction`` of all labelled posts) are never seen by the search and the backtest
of the tuned recipe stays honest. The model matrix (adapters, PCA, term reducers) is fitted
once per fold: a trial changes only CatBoost (loss, depth, learning rate, L2, rounds cap) and
which views enter, and every reduction is fitted per column, so leaving a view out is the same
as fitting without it. Trials fit one seed. The score is ``mean SRC - mean MAE`` over the
folds: both numbers users judge a model by, in the same units of improvement.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from smp_platform.modeling.fit import fit_boosters, order_key, time_folds
from smp_platform.modeling.matrix import LABEL, FeatureSpec, ModelMatrix
from smp_platform.modeling.metrics import metrics
from smp_platform.modeling.recipe import TUNABLE_FIELDS, apply_recipe, recipe_columns

if TYPE_CHECKING:
    import optuna

    from smp_platform.core.config import TrainSettings

log = logging.getLogger(__name__)

LOSSES = ("MAE", "RMSE", "Huber:delta=1.0")


@dataclass(frozen=True)
class SearchSpace:
    """The ranges a trial draws from (the defaults fit a few thousand posts).
    ``optional_views``: the views a trial may leave out (None: those the feature groups
    declare optional, as ``smp tune`` resolves it)."""

    losses: tuple[str, ...] = LOSSES
    depth: tuple[int, int] = (4, 8)
    learning_rate: tuple[float, float] = (0.01, 0.15)  # drawn on a log scale
    l2_leaf_reg: tuple[float, float] = (1.0, 30.0)  # drawn on a log scale
    iterations: tuple[int, int, int] = (500, 3000, 250)  # the cap (low, high, step)
    optional_views: tuple[str, ...] | None = None


@dataclass
class Fold:
    """One time-ordered fold, its model matrix fitted once on its training posts."""

    matrix: ModelMatrix
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_valid: pd.DataFrame
    y_valid: np.ndarray


@dataclass(frozen=True)
class TrialResult:
    number: int
    recipe: dict[str, Any]
    score: float
    src: float
    mae: float
    folds: list[dict[str, float]]


def prepare_folds(
    frame: pd.DataFrame,
    settings: TrainSettings,
    spec: FeatureSpec,
    *,
    n_folds: int = 2,
) -> list[Fold]:
    """The folds' model matrices, fitted with every column (trials choose among them)."""
    prepared = []
    for train, window in time_folds(frame, n_folds, settings.validation_fraction):
        y = train[LABEL].to_numpy(dtype=np.float64)
        matrix = ModelMatrix(spec, settings)
        X_train = matrix.fit_transform(train, y, order_key(train))
        prepared.append(
            Fold(
                matrix,
                X_train,
                y,
                matrix.transform(window),
                window[LABEL].to_numpy(dtype=np.float64),
            )
        )
    return prepared


def evaluate_recipe(
    folds: Sequence[Fold],
    settings: TrainSettings,
    feature_columns: Sequence[str],
    view_of: Mapping[str, str],
) -> list[dict[str, float]]:
    """Metrics of one recipe (one seed) on each fold's window (``view_of``: feature -> view)."""
    single = settings.model_copy(update={"seeds": 1})
    kept = recipe_columns(feature_columns, settings, view_of)
    scores = []
    for fold in folds:
        columns = fold.matrix.outputs_of(kept)
        if not columns:
            raise ValueError("the recipe leaves no feature column in")
        categorical = [c for c in fold.matrix.categorical if c in columns]
        boosters, _, _ = fit_boosters(fold.X_train[columns], fold.y_train, categorical, single)
        prediction = np.mean([b.predict(fold.X_valid[columns]) for b in boosters], axis=0)
        scores.append(metrics(fold.y_valid, prediction))
    return scores


def suggest_recipe(
    trial: optuna.Trial, available_views: Sequence[str], space: SearchSpace
) -> dict[str, Any]:
    """One point of the search space (the fields of :data:`TUNABLE_FIELDS`)."""
    low, high, step = space.iterations
    recipe: dict[str, Any] = {
        "loss_function": trial.suggest_categorical("loss_function", list(space.losses)),
        "depth": trial.suggest_int("depth", *space.depth),
        "learning_rate": trial.suggest_float("learning_rate", *space.learning_rate, log=True),
        "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", *space.l2_leaf_reg, log=True),
        "iterations": trial.suggest_int("iterations", low, high, step=step),
    }
    recipe["exclude_views"] = [
        view
        for view in space.optional_views or ()
        if view in available_views and not trial.suggest_categorical(f"use_{view}", [True, False])
    ]
    return recipe


TrialDone = Callable[[TrialResult], None]


def search(
    folds: Sequence[Fold],
    settings: TrainSettings,
    feature_columns: Sequence[str],
    *,
    view_of: Mapping[str, str],
    n_trials: int,
    space: SearchSpace | None = None,
    seed: int = 0,
    on_trial: TrialDone | None = None,
) -> list[TrialResult]:
    """Run the search; trial 0 is ``settings``' own recipe (evaluated as it is, even outside
    the search space), so the best is never worse than it on the folds. Returns every trial,
    in order (``n_trials`` in all)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = space or SearchSpace()
    available = sorted({view_of[c] for c in feature_columns if c in view_of})
    results: list[TrialResult] = []

    def run(number: int, recipe: dict[str, Any]) -> TrialResult:
        fold_scores = evaluate_recipe(
            folds, apply_recipe(settings, recipe), feature_columns, view_of
        )
        src = float(np.mean([s["src"] for s in fold_scores]))
        mae = float(np.mean([s["mae"] for s in fold_scores]))
        result = TrialResult(number, recipe, src - mae, src, mae, fold_scores)
        results.append(result)
        log.info("trial %d: SRC %.4f, MAE %.4f  %s", number, src, mae, recipe)
        if on_trial is not None:
            on_trial(result)
        return result

    def objective(trial: optuna.Trial) -> float:
        return run(trial.number + 1, suggest_recipe(trial, available, space)).score

    run(0, {k: getattr(settings, k) for k in TUNABLE_FIELDS})
    if n_trials > 1:
        sampler = optuna.samplers.TPESampler(seed=seed)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(objective, n_trials=n_trials - 1)
    return results


def best_trial(results: Sequence[TrialResult]) -> TrialResult:
    return max(results, key=lambda r: r.score)
