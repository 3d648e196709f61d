"""`smp tune` on a small frame: a few trials, each a child MLflow run, the best recipe saved
and then used by train; the search never sees the backtest's posts."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from smp_platform.core.config import Settings, TrainSettings
from smp_platform.modeling.fit import time_folds, time_split
from smp_platform.modeling.recipe import TUNABLE_FIELDS, recipe_path
from smp_platform.modeling.tuning import SearchSpace
from smp_platform.testing.feature_frames import synthetic_frame

pytestmark = pytest.mark.integration

FAST = TrainSettings(
    model_name="tune-test",
    experiment="tune-test",
    iterations=100,
    learning_rate=0.1,
    depth=4,
    adapter_epochs=3,
    adapter_folds=2,
    embedding_components=4,
    seeds=1,
)
# Rounds caps for 300 posts: the default space's thousands of rounds take minutes here.
SMALL = SearchSpace(depth=(3, 5), learning_rate=(0.05, 0.2), iterations=(50, 150, 50))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(300, seed=5)


def test_the_folds_are_time_ordered_inside_the_training_posts(frame: pd.DataFrame) -> None:
    train, backtest_window = time_split(frame, 0.2)
    folds = time_folds(train, 2, 0.2)
    newest_train, newest_window = folds[0]
    older_train, older_window = folds[1]
    assert newest_window["event_timestamp"].max() < backtest_window["event_timestamp"].min()
    assert newest_train["event_timestamp"].max() < newest_window["event_timestamp"].min()
    assert older_window["event_timestamp"].max() < newest_window["event_timestamp"].min()
    assert len(older_train) + len(older_window) == len(newest_train)


def test_tune_logs_every_trial_and_train_uses_the_best_recipe(
    frame: pd.DataFrame, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient
    from smp_platform.pipeline.train import train_settings
    from smp_platform.pipeline.tune import tune

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings(data_dir=tmp_path, train=FAST)
    assert train_settings(settings) == (FAST, "settings")  # no recipe saved yet

    outcome = tune(settings, n_trials=3, frame=frame, space=SMALL)

    assert outcome.n_trials == 3 and outcome.n_posts == 240
    # trial 0 is the recipe in use: the best is never worse than it on the folds
    assert outcome.start.recipe == {k: getattr(FAST, k) for k in TUNABLE_FIELDS}
    assert outcome.best.score >= outcome.start.score
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(FAST.experiment)
    trials = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{outcome.run_id}'"
    )
    assert len(trials) == 3
    assert all({"src", "mae", "score", "fold1_mae"} <= set(r.data.metrics) for r in trials)
    assert all("loss_function" in r.data.params for r in trials)
    (best,) = [r for r in trials if r.data.tags.get("recipe") == "best"]
    assert best.data.metrics["score"] == pytest.approx(outcome.best.score)
    # independently of the search's own bookkeeping: each logged score is mean SRC - mean MAE
    # of its folds, and the best is the highest of the logged scores
    for run in trials:
        m = run.data.metrics
        assert m["score"] == pytest.approx(m["src"] - m["mae"])
        assert m["mae"] == pytest.approx((m["fold0_mae"] + m["fold1_mae"]) / 2)
    assert best.data.metrics["score"] == max(r.data.metrics["score"] for r in trials)
    parent = client.get_run(outcome.run_id)
    assert parent.data.tags["kind"] == "recipe-search"
    assert json.loads(parent.data.tags["recipe"]) == outcome.best.recipe

    saved = json.loads(recipe_path(tmp_path).read_text())
    assert saved["recipe"] == outcome.best.recipe and saved["run_id"] == outcome.run_id
    recipe, source = train_settings(settings)
    assert source == str(recipe_path(tmp_path))
    for field in TUNABLE_FIELDS:
        assert getattr(recipe, field) == outcome.best.recipe[field]
    assert recipe.seeds == FAST.seeds and recipe.model_name == FAST.model_name
