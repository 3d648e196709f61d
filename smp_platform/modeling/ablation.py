"""Ablation as in the paper: add one feature group at a time, score each on the same posts.

Rows (cumulative): tabular only; + text embedding (PCA, no adapter); + adapted text embedding;
+ perplexity; + inconsistency signals (similarities); all (+ adapted image embedding and every
other served feature in the frame). Each row is trained on the time-split training posts and
scored (SRC, MAE) on the latest posts; MLflow gets a parent run with one nested run per row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from smp_platform.modeling.evaluate import with_baseline
from smp_platform.modeling.features import LABEL

if TYPE_CHECKING:
    from smp_platform.config import TrainSettings

log = logging.getLogger(__name__)

TEXT_EMBEDDING = "text_embedding"
IMAGE_EMBEDDING = "image_embedding"


@dataclass(frozen=True)
class AblationStep:
    name: str
    feature_columns: tuple[str, ...]
    adapted: tuple[str, ...]


def ablation_steps(available: list[str]) -> list[AblationStep]:
    """The six cumulative feature sets, limited to the columns ``available`` in the frame."""
    from feature_repo.feature_views import TABULAR_VIEWS, VIEW_FIELDS, feature_names
    from smp_platform.modeling.report import similarity_columns

    present = set(available)

    def keep(names: list[str]) -> list[str]:
        return [n for n in names if n in present]

    tabular = keep([n for view in TABULAR_VIEWS for n in feature_names(view)])
    text = keep([TEXT_EMBEDDING])
    perplexity = keep(feature_names("post_perplexity"))
    similarities = keep(similarity_columns())
    served = keep([n for view in VIEW_FIELDS for n in feature_names(view)])
    everything = list(dict.fromkeys([*tabular, *text, *perplexity, *similarities, *served]))
    cumulative: list[tuple[str, list[str], tuple[str, ...]]] = [
        ("tabular", tabular, ()),
        ("+ text embedding", tabular + text, ()),
        ("+ adapted text embedding", tabular + text, (TEXT_EMBEDDING,)),
        ("+ perplexity", tabular + text + perplexity, (TEXT_EMBEDDING,)),
        (
            "+ inconsistency signals",
            tabular + text + perplexity + similarities,
            (TEXT_EMBEDDING,),
        ),
        ("all", everything, (TEXT_EMBEDDING, IMAGE_EMBEDDING)),
    ]
    return [AblationStep(name, tuple(cols), adapted) for name, cols, adapted in cumulative]


def run_ablation(frame: pd.DataFrame, settings: TrainSettings, tracking_uri: str) -> pd.DataFrame:
    """Train and score each ablation row; returns one row per step (see :func:`format_ablation`)."""
    import mlflow
    from mlflow import MlflowClient
    from smp_platform.modeling.registry import (
        default_artifact_location,
        ensure_experiment,
        tracking,
    )
    from smp_platform.modeling.train import time_split, train_model

    labelled = frame[frame[LABEL].notna()]
    train, valid = time_split(labelled, settings.validation_fraction)
    steps = ablation_steps(list(frame.columns))
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = ensure_experiment(
        client, settings.experiment, default_artifact_location(tracking_uri)
    )
    rows = []
    with (
        tracking(tracking_uri),
        mlflow.start_run(experiment_id=experiment_id, run_name="ablation") as parent,
    ):
        mlflow.set_tag("kind", "ablation")
        mlflow.log_params(settings.model_dump())
        mlflow.log_params({"n_train": len(train), "n_valid": len(valid)})
        for step in steps:
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=step.name, nested=True
            ) as child:
                trained = train_model(
                    train, settings, list(step.feature_columns), adapted=step.adapted
                )
                scores = with_baseline(valid[LABEL], trained.predict(valid), trained.train_median)
                mlflow.log_params(
                    {
                        "step": step.name,
                        "feature_columns": ",".join(step.feature_columns),
                        "adapted": ",".join(step.adapted) or "-",
                        "n_features": len(step.feature_columns),
                    }
                )
                mlflow.log_metrics({f"valid_{k}": v for k, v in scores.items()})
            rows.append(
                {
                    "step": step.name,
                    "n_features": len(step.feature_columns),
                    "src": scores["src"],
                    "mae": scores["mae"],
                    "baseline_src": scores["baseline_src"],
                    "baseline_mae": scores["baseline_mae"],
                    "run_id": child.info.run_id,
                }
            )
            log.info("ablation %-26s SRC %.4f  MAE %.4f", step.name, scores["src"], scores["mae"])
        table = pd.DataFrame(rows)
        mlflow.log_text(format_ablation(table), "ablation.txt")
        mlflow.log_metrics(
            {
                "best_src": float(np.nanmax(table["src"])),
                "best_mae": float(np.nanmin(table["mae"])),
            }
        )
    table.attrs["parent_run_id"] = parent.info.run_id
    return table


def format_ablation(table: pd.DataFrame) -> str:
    """The ablation table as fixed-width text (median baseline beside each row)."""
    shown = table[["step", "n_features", "src", "mae", "baseline_mae"]]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")
