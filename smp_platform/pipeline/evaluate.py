"""The evaluate verb: the paper's ablation, plus the tag terms and the author's earlier
popularity, on the time-split validation posts beside the median baseline, with the recipe
``train`` uses; logged to MLflow (a parent run with one nested run per feature set)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from smp_platform.core.config import Settings, TrainSettings
from smp_platform.features.registry import groups_for
from smp_platform.infra.mlflow_registry import ModelRegistry
from smp_platform.modeling.ablation import format_ablation, run_ablation
from smp_platform.pipeline.frames import labelled_frame
from smp_platform.pipeline.train import train_settings


def log_ablation(
    settings: Settings, table: pd.DataFrame, recipe: TrainSettings | None = None
) -> str:
    """Log an ablation table as a parent run + one nested run per row; the parent's run id."""
    import mlflow

    registry = ModelRegistry(settings)
    with registry.run("ablation") as parent:
        mlflow.set_tag("kind", "ablation")
        mlflow.log_params((recipe or settings.train).model_dump())
        mlflow.log_params({k: table.attrs[k] for k in ("n_train", "n_valid") if k in table.attrs})
        for row in table.to_dict("records"):
            with registry.child_run(parent, row["step"]):
                mlflow.log_params(
                    {
                        "step": row["step"],
                        "feature_columns": row["feature_columns"],
                        "adapted": row["adapted"],
                        "n_features": row["n_features"],
                    }
                )
                metrics = {
                    k: float(v)
                    for k, v in row.items()
                    if k.split("_fold")[0] in ("src", "mae", "mse", "rmse", "n")
                    or k.startswith("baseline_")
                }
                mlflow.log_metrics({f"valid_{k}": v for k, v in metrics.items()})
        mlflow.log_text(format_ablation(table), "ablation.txt")
        mlflow.log_metrics(
            {
                "best_src": float(np.nanmax(table["src"])),
                "best_mae": float(np.nanmin(table["mae"])),
            }
        )
    return str(parent.info.run_id)


def ablation_table(
    settings: Settings,
    frame: pd.DataFrame | None = None,
    *,
    folds: int = 1,
    feature_service: str | None = None,
) -> pd.DataFrame:
    """Train and score the feature sets of the groups' ablation stages on ``folds`` time folds
    (on ``frame``, default the labelled frame of ``feature_service``, default the configured
    one) and log them; ``attrs["parent_run_id"]`` names the run."""
    if frame is None:
        frame = labelled_frame(settings, feature_service or settings.feature_service)
    recipe, _ = train_settings(settings)
    table = run_ablation(frame, recipe, groups_for(settings), folds=folds)
    table.attrs["parent_run_id"] = log_ablation(settings, table, recipe)
    return table


def evaluate(settings: Settings, *, folds: int = 1, feature_service: str | None = None) -> str:
    """The ablation as fixed-width text (what ``smp evaluate`` prints)."""
    return format_ablation(ablation_table(settings, folds=folds, feature_service=feature_service))
