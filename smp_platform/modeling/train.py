"""Train the popularity model: time split, cross-fitted adapters + PCA, CatBoost."""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from smp_platform.modeling.features import ADAPTED_EMBEDDINGS, LABEL, TIMESTAMP, ModelMatrix

if TYPE_CHECKING:
    from smp_platform.config import TrainSettings
    from smp_platform.modeling.pyfunc import PopularityModel

log = logging.getLogger(__name__)

MIN_EARLY_STOPPING_ROWS = 20


def _sorted_by_time(frame: pd.DataFrame) -> pd.DataFrame:
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
    ordered = _sorted_by_time(frame)
    n_valid = max(1, math.ceil(len(ordered) * validation_fraction))
    if len(ordered) < 2:
        raise ValueError(f"need at least 2 posts to split, got {len(ordered)}")
    cutoff = ordered[TIMESTAMP].iloc[len(ordered) - n_valid]
    is_valid = (ordered[TIMESTAMP] >= cutoff).to_numpy()
    if is_valid.all():
        is_valid = np.arange(len(ordered)) >= len(ordered) - n_valid
    return ordered[~is_valid], ordered[is_valid]


def _order_key(frame: pd.DataFrame) -> np.ndarray:
    return pd.to_datetime(frame[TIMESTAMP], utc=True).astype("int64").to_numpy()


@dataclass
class TrainedModel:
    """A fitted model and what a run records about how it was fitted."""

    model: PopularityModel
    feature_columns: list[str]
    settings: TrainSettings
    n_train: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    train_median: float
    best_iteration: int
    feature_importance: pd.Series

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_frame(frame)


def train_model(
    frame: pd.DataFrame,
    settings: TrainSettings,
    feature_columns: Sequence[str],
    *,
    adapted: Collection[str] = ADAPTED_EMBEDDINGS,
) -> TrainedModel:
    """Fit adapters, PCA and CatBoost on the training posts in ``frame``.

    The number of boosting rounds is chosen by early stopping on the latest
    ``validation_fraction`` of the *training* posts (never the validation posts), then the
    model is refitted on all training posts with that many rounds. ``adapted`` names the
    embeddings that get the CLIP-Adapter (the others are only reduced with PCA).
    """
    from catboost import CatBoostRegressor, Pool

    from smp_platform.modeling.pyfunc import PopularityModel

    labelled = frame[frame[LABEL].notna()] if LABEL in frame.columns else None
    if labelled is None or len(labelled) < 2:
        raise ValueError(f"training needs at least 2 posts with a {LABEL!r} label")
    train = _sorted_by_time(labelled)
    y = train[LABEL].to_numpy(dtype=np.float64)
    matrix = ModelMatrix.for_columns(list(feature_columns), settings, adapted)
    X = matrix.fit_transform(train, y, _order_key(train))
    cat_features = list(matrix.categorical)
    if matrix.dropped:
        log.info("dropped feature columns null on every training post: %s", matrix.dropped)

    params = dict(
        loss_function="RMSE",
        iterations=settings.iterations,
        learning_rate=settings.learning_rate,
        depth=settings.depth,
        random_seed=settings.seed,
        thread_count=2,
        verbose=False,
        allow_writing_files=False,
    )
    n_inner = math.ceil(len(train) * settings.validation_fraction)
    best_iteration = settings.iterations - 1
    if n_inner >= MIN_EARLY_STOPPING_ROWS and len(train) - n_inner >= MIN_EARLY_STOPPING_ROWS:
        # train is sorted by time: the last rows are the latest training posts
        fit_rows, stop_rows = slice(0, len(train) - n_inner), slice(len(train) - n_inner, None)
        probe = CatBoostRegressor(
            **params,
            od_type="Iter",
            od_wait=max(20, settings.iterations // 10),
            use_best_model=True,
        )
        probe.fit(
            Pool(X.iloc[fit_rows], y[fit_rows], cat_features=cat_features),
            eval_set=Pool(X.iloc[stop_rows], y[stop_rows], cat_features=cat_features),
        )
        best_iteration = int(probe.get_best_iteration() or 0)
    booster = CatBoostRegressor(**{**params, "iterations": best_iteration + 1})
    booster.fit(Pool(X, y, cat_features=cat_features))
    importance = pd.Series(
        booster.get_feature_importance(), index=list(X.columns), name="importance"
    ).sort_values(ascending=False)
    timestamps = pd.to_datetime(train[TIMESTAMP], utc=True)
    return TrainedModel(
        model=PopularityModel(matrix, booster),
        feature_columns=matrix.feature_columns,
        settings=settings,
        n_train=len(train),
        train_start=timestamps.min(),
        train_end=timestamps.max(),
        train_median=float(np.median(y)),
        best_iteration=best_iteration,
        feature_importance=importance,
    )
