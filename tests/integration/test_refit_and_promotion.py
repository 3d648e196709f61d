"""Backtest then refit, and the honest promotion: real MLflow (SQLite), a synthetic frame.

The registered model is fitted on every labelled post; its quality is the backtest's (the
same recipe fitted on the older posts). Promotion compares recipes on the candidate's split,
re-running the champion's recipe from its logged params, never the registered models on
posts they were fitted on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smp_platform.core.config import Settings, TrainSettings
from smp_platform.infra.mlflow_registry import ModelRegistry
from smp_platform.modeling.fit import backtest, time_split
from smp_platform.modeling.metrics import metrics
from smp_platform.modeling.promotion import PromotionDecision
from smp_platform.modeling.recipe import recipe_from_params
from smp_platform.pipeline.promote import BacktestComparison, promote
from smp_platform.pipeline.train import TrainOutcome, train_on_frame
from smp_platform.testing.feature_frames import (
    builtin_groups,
    served_spec,
    synthetic_frame,
)

pytestmark = pytest.mark.integration

SERVICE = "popularity_v1"
FAST = TrainSettings(
    model_name="refit-test",
    experiment="refit-test",
    iterations=120,
    learning_rate=0.1,
    depth=4,
    adapter_epochs=5,
    adapter_folds=3,
    embedding_components=4,
    seeds=1,
)
# Two trees of depth 1: a recipe that cannot beat the champion's on the same posts.
WEAK = FAST.model_copy(update={"iterations": 2, "depth": 1})


@dataclass
class Scenario:
    settings: Settings
    registry: ModelRegistry
    frame: pd.DataFrame
    champion: TrainOutcome
    candidate: TrainOutcome
    decision: PromotionDecision
    comparison: BacktestComparison


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        root: Path = tmp_path_factory.mktemp("refit")
        settings = Settings(data_dir=root, train=FAST)
        registry = ModelRegistry(settings)
        frame = synthetic_frame(300, seed=4)
        champion = train_on_frame(settings, frame, SERVICE)
        registry.set_champion(champion.version)
        weak = settings.model_copy(update={"train": WEAK})
        candidate = train_on_frame(weak, frame, SERVICE)
        comparison = BacktestComparison(
            registry, candidate.version, lambda service: frame, builtin_groups()
        )
        decision = promote(
            registry,
            candidate.version,
            comparison.evaluate,
            comparison=lambda: comparison.description,
        )
        yield Scenario(settings, registry, frame, champion, candidate, decision, comparison)


def test_the_registered_model_is_refitted_on_all_labelled_posts(scenario: Scenario) -> None:
    registry, frame = scenario.registry, scenario.frame
    train, valid = time_split(frame, FAST.validation_fraction)
    version = registry.client.get_model_version(FAST.model_name, scenario.champion.version)
    params = registry.client.get_run(version.run_id).data.params
    assert params["n_train"] == str(len(frame)) == version.tags["n_train"]
    assert params["backtest_n_train"] == str(len(train)) == str(scenario.champion.n_train)
    assert scenario.champion.n_registered == len(frame)
    cutoff = pd.to_datetime(frame["event_timestamp"], utc=True).max()
    assert pd.Timestamp(version.tags["training_cutoff"]) == cutoff
    assert version.tags["evaluation"] == "backtest"
    assert recipe_from_params(params) == FAST  # the whole recipe, read back

    # The version's metrics are the backtest's: the recipe refitted on the older posts only
    # reproduces them, and the registered model (which saw the newest posts) predicts otherwise.
    tested = backtest(train, valid, FAST, served_spec())
    assert tested.scores["mae"] == pytest.approx(scenario.champion.metrics["mae"], rel=1e-9)
    assert tested.scores["src"] == pytest.approx(scenario.champion.metrics["src"], rel=1e-9)
    # ... and independently of the code under test: the recorded numbers are SciPy's Spearman
    # and numpy's MAE of a model fitted only on posts older than every scored one
    from scipy.stats import spearmanr

    honest = tested.trained.predict(valid)
    truth = valid["popularity"].to_numpy()
    assert spearmanr(truth, honest).statistic == pytest.approx(
        scenario.champion.metrics["src"], rel=1e-9
    )
    assert np.mean(np.abs(honest - truth)) == pytest.approx(
        scenario.champion.metrics["mae"], rel=1e-9
    )
    assert tested.trained.train_end < pd.to_datetime(valid["event_timestamp"], utc=True).min()
    registered = registry.load(scenario.champion.version)
    served = valid[tested.trained.feature_columns]
    refit_predictions = registered.predict(served)
    assert not np.allclose(refit_predictions, tested.trained.predict(valid))
    # fitted on them, the refit scores the newest posts better than any honest number
    assert metrics(valid["popularity"], refit_predictions)["mae"] < tested.scores["mae"]


def test_promotion_reruns_the_champions_recipe_on_the_candidates_split(
    scenario: Scenario,
) -> None:
    decision, registry, frame = scenario.decision, scenario.registry, scenario.frame
    assert decision.champion_version == scenario.champion.version
    assert not decision.promoted, decision.reason
    assert registry.champion() == (scenario.champion.version, SERVICE)
    # the candidate's number is its recorded backtest
    assert decision.candidate_metrics["mae"] == pytest.approx(scenario.candidate.metrics["mae"])
    # the champion's number is its recipe fitted on the posts before the candidate's window
    train, valid = time_split(frame, FAST.validation_fraction)
    rerun = backtest(train, valid, FAST, served_spec()).scores
    assert decision.champion_metrics is not None
    assert decision.champion_metrics["mae"] == pytest.approx(rerun["mae"], rel=1e-9)
    assert decision.champion_metrics["src"] == pytest.approx(rerun["src"], rel=1e-9)
    # ... not the registered champion scored on posts it was fitted on (flattering)
    in_sample = registry.evaluate_version(scenario.champion.version, valid)
    assert in_sample["mae"] < decision.champion_metrics["mae"]
    assert scenario.comparison.reruns == {scenario.champion.version: len(valid)}


def test_the_decision_is_logged_with_both_numbers_and_how_they_were_made(
    scenario: Scenario,
) -> None:
    client = scenario.registry.client
    version = client.get_model_version(FAST.model_name, scenario.candidate.version)
    assert version.tags["promotion_decision"] == "refused"
    assert version.tags["promotion_comparison"].startswith("backtest: each recipe fitted")
    experiment = client.get_experiment_by_name(FAST.experiment)
    (run,) = client.search_runs([experiment.experiment_id], "tags.kind = 'promotion'")
    decision = scenario.decision
    assert decision.champion_metrics is not None
    assert run.data.metrics["candidate_mae"] == pytest.approx(decision.candidate_metrics["mae"])
    assert run.data.metrics["champion_mae"] == pytest.approx(decision.champion_metrics["mae"])
    assert run.data.metrics["champion_src"] == pytest.approx(decision.champion_metrics["src"])


def test_a_version_logged_before_recipes_gets_its_legacy_recipe() -> None:
    legacy = recipe_from_params({"iterations": "300", "depth": "5", "learning_rate": "0.05"})
    assert (legacy.loss_function, legacy.l2_leaf_reg, legacy.seeds) == ("RMSE", 3.0, 1)
    assert (legacy.iterations, legacy.depth, legacy.learning_rate) == (300, 5, 0.05)
