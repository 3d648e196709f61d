"""The paper's analysis: report PNGs and the eight-row ablation (fast settings)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smp_platform.core.config import TrainSettings
from smp_platform.modeling.ablation import ablation_steps, format_ablation
from smp_platform.modeling.figures import popularity_bands, similarity_columns, write_report
from smp_platform.modeling.fit import time_split, train_model
from smp_platform.testing.feature_frames import (
    builtin_groups,
    served_feature_columns,
    served_spec,
    synthetic_frame,
)

FAST = TrainSettings(
    experiment="ablation-test",
    iterations=50,
    learning_rate=0.15,
    depth=4,
    adapter_epochs=8,
    adapter_folds=3,
    embedding_components=4,
    seeds=1,
)
STEPS = [
    "tabular",
    "+ text embedding",
    "+ adapted text embedding",
    "+ perplexity",
    "+ inconsistency signals",
    "+ image embedding",
    "+ tag terms",
    "+ author popularity (all)",
]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(300, seed=3)


@pytest.fixture
def offline_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_popularity_bands_are_quantiles() -> None:
    bands = popularity_bands(pd.Series(np.arange(100.0)))
    assert bands.value_counts().to_dict() == {f"Q{i}": 20 for i in range(1, 6)}
    assert bands.iloc[0] == "Q1" and bands.iloc[-1] == "Q5"


def test_write_report_produces_non_empty_pngs(frame: pd.DataFrame, tmp_path) -> None:
    train, valid = time_split(frame, FAST.validation_fraction)
    trained = train_model(train, FAST, served_spec())
    similarities = similarity_columns(builtin_groups().fields.values())
    paths = write_report(valid, trained, tmp_path / "report", similarities=similarities)
    assert sorted(p.name for p in paths) == [
        "feature_importance.png",
        "perplexity_by_popularity.png",
        "similarity_by_popularity.png",
        "text_embedding_adaptation.png",
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5_000


def test_ablation_steps_are_cumulative() -> None:
    steps = ablation_steps(served_feature_columns(), builtin_groups())
    assert [s.name for s in steps] == STEPS
    for before, after in zip(steps, steps[1:], strict=False):
        assert set(before.feature_columns) <= set(after.feature_columns)
    assert "text_embedding" not in steps[0].feature_columns
    assert steps[1].adapted == () and steps[2].adapted == ("text_embedding",)
    assert "image_title_similarity" in steps[4].feature_columns
    assert "image_embedding" in steps[5].feature_columns
    # the new signals enter one row each, after everything else
    assert "tag_terms" not in steps[5].feature_columns
    assert "tag_terms" in steps[6].feature_columns
    assert "author_popularity_mean" not in steps[6].feature_columns
    assert steps[7].feature_columns[-4:] == (
        "author_labelled_prior_posts",
        "author_popularity_mean",
        "author_popularity_max",
        "author_popularity_last",
    )
    assert set(steps[7].feature_columns) == set(served_feature_columns())


def test_ablation_has_eight_rows_with_finite_metrics_and_mlflow_runs(
    frame: pd.DataFrame, tmp_path, offline_mlflow: None
) -> None:
    from mlflow import MlflowClient
    from smp_platform.core.config import Settings
    from smp_platform.pipeline.evaluate import ablation_table

    settings = Settings(data_dir=tmp_path, train=FAST)
    uri = settings.mlflow_tracking_uri
    table = ablation_table(settings, frame)
    assert list(table.step) == STEPS
    assert np.isfinite(table[["src", "mae", "baseline_mae"]].to_numpy()).all()
    assert table.loc[table.step == STEPS[-1], "src"].item() > 0.3
    text = format_ablation(table)
    assert "adapted text embedding" in text and "baseline_mae" in text
    # the median baseline's own row, on the same split: no ranking, the baseline's MAE
    baseline_line = text.splitlines()[1].split()
    assert baseline_line[:3] == ["median", "baseline", "0"]
    assert float(baseline_line[4]) == pytest.approx(table["baseline_mae"].iloc[0], abs=1e-4)
    assert float(baseline_line[4]) > table["mae"].min()

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(FAST.experiment)
    assert experiment.artifact_location.startswith((tmp_path / "mlartifacts").as_uri())
    parent_id = table.attrs["parent_run_id"]
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(r.data.params["step"] for r in children) == sorted(STEPS)
    assert all("valid_src" in r.data.metrics for r in children)


def test_the_ablation_on_two_folds_prints_both_folds_beside_the_baseline() -> None:
    table = pd.DataFrame(
        [
            {
                "step": "tabular",
                "n_features": 3,
                "src": 0.71,
                "mae": 1.40,
                "baseline_src": 0.0,
                "baseline_mae": 2.30,
                "src_fold1": 0.69,
                "mae_fold1": 1.45,
                "baseline_src_fold1": 0.0,
                "baseline_mae_fold1": 2.40,
            }
        ]
    )
    table.attrs["folds"] = [("newest", 800, 200), ("earlier", 600, 200)]
    lines = format_ablation(table).splitlines()
    assert lines[0].split() == ["step", "n_features", "newest", "SRC", "newest", "MAE"] + [
        "earlier",
        "SRC",
        "earlier",
        "MAE",
    ]
    assert lines[1].split() == ["median", "baseline", "0", "0.0000", "2.3000", "0.0000", "2.4000"]
    assert lines[2].split() == ["tabular", "3", "0.7100", "1.4000", "0.6900", "1.4500"]
    assert "newest: 800 -> 200; earlier: 600 -> 200" in lines[-1]
