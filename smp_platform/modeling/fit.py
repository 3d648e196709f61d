"""Train the popularity model: time split, cross-fitted adapters + PCA, term reducers,
CatBoost (seeds averaged); the backtest, and the refit on all labelled posts."""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from smp_platform.modeling.matrix import LABEL, TIMESTAMP, FeatureSpec, ModelMatrix
from smp_platform.modeling.metrics import with_baseline

if TYPE_CHECKING:
    from catboost import CatBoostRegressor

    from smp_platform.core.config import TrainSettings
    from smp_platform.modeling.pyfunc import PopularityModel

log = logging.getLogger(__name__)

MIN_EARLY_STOPPING_ROWS = 20


def sorted_by_time(frame: pd.DataFrame) -> pd.DataFrame:
    if TIMESTAMP not in frame.columns:
        raise ValueError(f"the frame needs an {TIMESTAMP!r} column (the post's publication time)")
    keys = [TIMESTAMP, "post_id"] if "post_id" in frame.columns else [TIMESTAMP]
    return frame.sort_values(keys, kind="stable")


def time_split(
    frame: pd.DataFrame, validation_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, valid): the latest ``validation_fraction`` of posts are validation.

    Posts published at the same instant stay on the same side, so every validation post is
    strictly later than every training post (unless all share one timestamp).
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    ordered = sorted_by_time(frame)
    n_valid = max(1, math.ceil(len(ordered) * validation_fraction))
    if len(ordered) < 2:
        raise ValueError(f"need at least 2 posts to split, got {len(ordered)}")
    cutoff = ordered[TIMESTAMP].iloc[len(ordered) - n_valid]
    is_valid = (ordered[TIMESTAMP] >= cutoff).to_numpy()
    if is_valid.all():
        is_valid = np.arange(len(ordered)) >= len(ordered) - n_valid
    return ordered[~is_valid], ordered[is_valid]


def time_folds(
    frame: pd.DataFrame, n_folds: int, fraction: float
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """``n_folds`` (train, window) pairs, newest first: each window is the newest ``fraction``
    of the posts left once the newer windows are cut off; its training posts are all older."""
    folds = []
    remaining = sorted_by_time(frame[frame[LABEL].notna()])
    for _ in range(n_folds):
        train, window = time_split(remaining, fraction)
        folds.append((train, window))
        remaining = train
    return folds


def order_key(frame: pd.DataFrame) -> np.ndarray:
    """Each post's publication time as int64 nanoseconds: the adapter's fold order."""
    return pd.to_datetime(frame[TIMESTAMP], utc=True).astype("int64").to_numpy()


@dataclass
class TrainedModel:
    """A fitted model and what a run records about how it was fitted."""

    model: PopularityModel
    feature_columns: list[str]
    settings: TrainSettings
    n_train: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp  # the training cutoff: the latest post it was fitted on
    train_median: float
    best_iteration: int  # of the early-stopping probe
    feature_importance: pd.Series
    rounds: int = 0  # of the fitted boosters (the probe's, scaled to the data size)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_frame(frame)


def catboost_params(settings: TrainSettings, seed: int, threads: int = 2) -> dict[str, Any]:
    return dict(
        loss_function=settings.loss_function,
        iterations=settings.iterations,
        learning_rate=settings.learning_rate,
        depth=settings.depth,
        l2_leaf_reg=settings.l2_leaf_reg,
        random_seed=seed,
        thread_count=threads,
        verbose=False,
        allow_writing_files=False,
    )


def fit_boosters(
    X: pd.DataFrame,
    y: np.ndarray,
    cat_features: Sequence[str],
    settings: TrainSettings,
    *,
    threads: int = 2,
) -> tuple[list[CatBoostRegressor], int, int]:
    """(boosters, best_iteration, rounds) on rows sorted by time, the rounds rule of
    docs/ACCURACY.md: early stopping on the newest ``validation_fraction`` of these rows
    (never any later post), then ``settings.seeds`` models on all rows with the rounds scaled
    by the data size (x1.25 for a 20 % fraction: more rows want more rounds)."""
    from catboost import CatBoostRegressor, Pool

    cat = list(cat_features)
    n_inner = math.ceil(len(y) * settings.validation_fraction)
    best_iteration, rounds = settings.iterations - 1, settings.iterations
    if n_inner >= MIN_EARLY_STOPPING_ROWS and len(y) - n_inner >= MIN_EARLY_STOPPING_ROWS:
        fit_rows, stop_rows = slice(0, len(y) - n_inner), slice(len(y) - n_inner, None)
        probe = CatBoostRegressor(
            **catboost_params(settings, settings.seed, threads),
            od_type="Iter",
            od_wait=max(20, settings.iterations // 10),
            use_best_model=True,
        )
        probe.fit(
            Pool(X.iloc[fit_rows], y[fit_rows], cat_features=cat),
            eval_set=Pool(X.iloc[stop_rows], y[stop_rows], cat_features=cat),
        )
        best_iteration = int(probe.get_best_iteration() or 0)
        rounds = max(1, round((best_iteration + 1) * len(y) / (len(y) - n_inner)))
    pool = Pool(X, y, cat_features=cat)
    boosters = []
    for i in range(max(1, settings.seeds)):
        params = {**catboost_params(settings, settings.seed + i, threads), "iterations": rounds}
        boosters.append(CatBoostRegressor(**params).fit(pool))
    return boosters, best_iteration, rounds


def train_model(
    frame: pd.DataFrame,
    settings: TrainSettings,
    spec: FeatureSpec,
    *,
    adapted: Collection[str] | None = None,
) -> TrainedModel:
    """Fit adapters, PCA, term reducers and CatBoost on the labelled posts in ``frame``.

    The number of boosting rounds is chosen by early stopping on the latest
    ``validation_fraction`` of these posts, then the model is refitted on all of them
    (:func:`fit_boosters`). ``spec``: the served columns the model reads, by kind;
    ``adapted`` names the embeddings that get the CLIP-Adapter (None: all; the others are only
    reduced with PCA).
    """
    from smp_platform.modeling.pyfunc import PopularityModel

    labelled = frame[frame[LABEL].notna()] if LABEL in frame.columns else None
    if labelled is None or len(labelled) < 2:
        raise ValueError(f"training needs at least 2 posts with a {LABEL!r} label")
    train = sorted_by_time(labelled)
    y = train[LABEL].to_numpy(dtype=np.float64)
    matrix = ModelMatrix(spec, settings, None if adapted is None else tuple(adapted))
    X = matrix.fit_transform(train, y, order_key(train))
    if matrix.dropped:
        log.info("dropped feature columns null on every training post: %s", matrix.dropped)
    boosters, best_iteration, rounds = fit_boosters(X, y, matrix.categorical, settings)
    importance = pd.Series(
        np.mean([b.get_feature_importance() for b in boosters], axis=0),
        index=list(X.columns),
        name="importance",
    ).sort_values(ascending=False)
    timestamps = pd.to_datetime(train[TIMESTAMP], utc=True)
    return TrainedModel(
        model=PopularityModel(matrix, boosters),
        feature_columns=matrix.feature_columns,
        settings=settings,
        n_train=len(train),
        train_start=timestamps.min(),
        train_end=timestamps.max(),
        train_median=float(np.median(y)),
        best_iteration=best_iteration,
        feature_importance=importance,
        rounds=rounds,
    )


@dataclass
class Backtest:
    """A recipe fitted on the older posts and scored on the newest ones (never seen by it)."""

    trained: TrainedModel
    valid: pd.DataFrame
    scores: dict[str, float]  # metrics, with the median baseline's as ``baseline_*``

    @property
    def valid_start(self) -> pd.Timestamp:
        return pd.to_datetime(self.valid[TIMESTAMP], utc=True).min()

    @property
    def valid_end(self) -> pd.Timestamp:
        return pd.to_datetime(self.valid[TIMESTAMP], utc=True).max()


def backtest(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    settings: TrainSettings,
    spec: FeatureSpec,
    *,
    adapted: Collection[str] | None = None,
) -> Backtest:
    """Fit the recipe on ``train`` and score it on the labelled posts of ``valid``."""
    scored = valid[valid[LABEL].notna()]
    if scored.empty:
        raise ValueError("the validation posts have no labels")
    trained = train_model(train, settings, spec, adapted=adapted)
    scores = with_baseline(scored[LABEL], trained.predict(scored), trained.train_median)
    return Backtest(trained, scored, scores)


def backtest_then_refit(
    frame: pd.DataFrame, settings: TrainSettings, spec: FeatureSpec
) -> tuple[Backtest, TrainedModel]:
    """The backtest on the time split, then the same recipe refitted on ALL labelled posts.

    The refit's rounds come from early stopping on its newest ``validation_fraction`` (the
    backtest's scored posts), scaled to the size of all posts: the posts closest in time to
    the ones it will predict are in the registered model, and its quality is the backtest's.
    """
    labelled = frame[frame[LABEL].notna()]
    train, valid = time_split(labelled, settings.validation_fraction)
    tested = backtest(train, valid, settings, spec)
    return tested, train_model(labelled, settings, spec)
