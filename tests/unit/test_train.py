"""Training: time split, minimum quality, invariance to column order, missing embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smp_platform.core.config import TrainSettings
from smp_platform.modeling.fit import TrainedModel, time_split, train_model
from smp_platform.modeling.matrix import feature_kinds
from smp_platform.modeling.metrics import metrics
from smp_platform.testing.feature_frames import (
    builtin_groups,
    served_feature_columns,
    served_spec,
    synthetic_frame,
)

FAST = TrainSettings(
    iterations=150,
    learning_rate=0.1,
    depth=4,
    adapter_epochs=10,
    adapter_folds=3,
    embedding_components=4,
    seeds=1,
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(300, seed=1)


@pytest.fixture(scope="module")
def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return time_split(frame, FAST.validation_fraction)


@pytest.fixture(scope="module")
def trained(split: tuple[pd.DataFrame, pd.DataFrame]) -> TrainedModel:
    return train_model(split[0], FAST, served_spec())


def test_time_split_puts_the_latest_posts_in_validation(frame: pd.DataFrame) -> None:
    shuffled = frame.sample(frac=1.0, random_state=0)
    train, valid = time_split(shuffled, 0.2)
    assert len(valid) == 60
    assert len(train) + len(valid) == len(frame)
    assert set(train.post_id).isdisjoint(valid.post_id)
    assert valid.event_timestamp.min() > train.event_timestamp.max()


def test_time_split_keeps_posts_of_one_instant_together() -> None:
    stamps = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-03", "2024-01-04"])
    frame = pd.DataFrame({"post_id": list("abcde"), "event_timestamp": stamps, "popularity": 1.0})
    train, valid = time_split(frame, 0.4)  # cut falls between c and d, both at 01-03
    assert list(valid.post_id) == ["c", "d", "e"]
    assert list(train.post_id) == ["a", "b"]


def test_feature_kinds_come_from_the_feature_views() -> None:
    spec = feature_kinds(served_feature_columns(), builtin_groups().fields)
    assert spec.embedding == ("text_embedding", "image_embedding")
    assert {"category", "language", "media_type"} <= set(spec.categorical)
    assert "perplexity" in spec.numeric and "music_is_original" in spec.numeric
    with pytest.raises(ValueError, match="unknown feature columns"):
        feature_kinds(["not_a_feature"], builtin_groups().fields)


def test_model_beats_the_median_baseline(
    trained: TrainedModel, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    valid = split[1]
    scores = metrics(valid.popularity, trained.predict(valid))
    baseline = metrics(valid.popularity, np.full(len(valid), trained.train_median))
    assert scores["src"] > 0.3
    assert scores["mae"] < baseline["mae"]
    assert {"text_embedding_pc0", "image_embedding_pc0"} <= set(trained.feature_importance.index)


def test_all_null_columns_are_dropped_and_ignored_at_serving(
    trained: TrainedModel, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    valid = split[1]
    assert "caption_title_similarity" in trained.model.matrix.dropped
    assert "caption_title_similarity" in trained.feature_columns  # still part of the contract
    filled = valid.assign(caption_title_similarity=0.9)
    np.testing.assert_array_equal(trained.predict(filled), trained.predict(valid))


def test_prediction_ignores_column_order_and_extra_columns(
    trained: TrainedModel, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    valid = split[1]
    served = valid[trained.feature_columns]
    shuffled = served.sample(frac=1.0, axis=1, random_state=3).assign(unrelated="x", score=1.0)
    np.testing.assert_allclose(trained.predict(shuffled), trained.predict(valid))
    np.testing.assert_allclose(trained.predict(served), trained.predict(valid))


def test_missing_embeddings_and_missing_columns_still_predict(
    trained: TrainedModel, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    valid = split[1]
    without_text = valid.assign(text_embedding=[None] * len(valid))
    lists = valid.assign(
        text_embedding=[None if v is None else list(map(float, v)) for v in valid.text_embedding]
    )
    for variant in (without_text, valid.drop(columns=["image_embedding", "perplexity"])):
        predictions = trained.predict(variant)
        assert predictions.shape == (len(valid),)
        assert np.isfinite(predictions).all()
    # python lists of floats (as Feast returns them) equal float32 arrays
    np.testing.assert_allclose(trained.predict(lists), trained.predict(valid), rtol=1e-6)
    with pytest.raises(ValueError, match="none of the model's feature columns"):
        trained.predict(valid[["post_id"]])


def test_early_stopping_uses_only_training_posts(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, valid = split
    # the validation posts never reach train_model, and training is deterministic
    first = train_model(train, FAST, served_spec(["author_follower_count_log", "category"]))
    second = train_model(train, FAST, served_spec(["author_follower_count_log", "category"]))
    assert first.best_iteration < FAST.iterations
    np.testing.assert_array_equal(first.predict(valid), second.predict(valid))
