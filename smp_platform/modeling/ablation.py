"""Ablation as in the paper: add one feature group at a time, score each on the same posts.

Rows (cumulative): tabular only; + text embedding (PCA, no adapter); + adapted text embedding;
+ perplexity; + inconsistency signals (similarities); all (+ adapted image embedding and every
other served feature in the frame). Each row is trained on the time-split training posts and
scored (SRC, MAE) on the latest posts. Logging to MLflow is the evaluate verb's job
(:mod:`smp_platform.evaluate`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from smp_platform.modeling.evaluate import with_baseline
from smp_platform.modeling.features import LABEL

if TYPE_CHECKING:
    from smp_platform.config import TrainSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AblationStep:
    name: str
    feature_columns: tuple[str, ...]
    adapted: tuple[str, ...]


def ablation_steps(available: list[str]) -> list[AblationStep]:
    """The six cumulative feature sets, limited to the columns ``available`` in the frame."""
    from feature_repo.feature_views import VIEWS, embedding_columns
    from smp_platform.modeling.report import similarity_columns

    present = set(available)

    def keep(names: list[str]) -> list[str]:
        return [n for n in names if n in present]

    def of_group(group: str) -> list[str]:
        return [f.name for v in VIEWS if v.group == group for f in v.features]

    text_embedding = tuple(embedding_columns("text"))
    image_embedding = tuple(embedding_columns("image"))
    tabular = keep(of_group("tabular"))
    text = keep(list(text_embedding))
    perplexity = keep(of_group("perplexity"))
    similarities = keep(similarity_columns())
    served = keep([f.name for v in VIEWS for f in v.features])
    everything = list(dict.fromkeys([*tabular, *text, *perplexity, *similarities, *served]))
    cumulative: list[tuple[str, list[str], tuple[str, ...]]] = [
        ("tabular", tabular, ()),
        ("+ text embedding", tabular + text, ()),
        ("+ adapted text embedding", tabular + text, text_embedding),
        ("+ perplexity", tabular + text + perplexity, text_embedding),
        (
            "+ inconsistency signals",
            tabular + text + perplexity + similarities,
            text_embedding,
        ),
        ("all", everything, text_embedding + image_embedding),
    ]
    return [AblationStep(name, tuple(cols), adapted) for name, cols, adapted in cumulative]


def run_ablation(frame: pd.DataFrame, settings: TrainSettings) -> pd.DataFrame:
    """Train and score each ablation row on the time split; one row per step (with its
    ``feature_columns`` and ``adapted``), ``attrs`` n_train / n_valid."""
    from smp_platform.modeling.train import time_split, train_model

    labelled = frame[frame[LABEL].notna()]
    train, valid = time_split(labelled, settings.validation_fraction)
    rows = []
    for step in ablation_steps(list(frame.columns)):
        trained = train_model(train, settings, list(step.feature_columns), adapted=step.adapted)
        scores = with_baseline(valid[LABEL], trained.predict(valid), trained.train_median)
        rows.append(
            {
                "step": step.name,
                "n_features": len(step.feature_columns),
                "feature_columns": ",".join(step.feature_columns),
                "adapted": ",".join(step.adapted) or "-",
                **scores,
            }
        )
        log.info("ablation %-26s SRC %.4f  MAE %.4f", step.name, scores["src"], scores["mae"])
    table = pd.DataFrame(rows)
    table.attrs.update(n_train=len(train), n_valid=len(valid))
    return table


def format_ablation(table: pd.DataFrame) -> str:
    """The ablation table as fixed-width text (median baseline beside each row)."""
    shown = table[["step", "n_features", "src", "mae", "baseline_mae"]]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")
