"""Ablation as in the paper: add one feature group at a time, score each on the same posts.

Rows (cumulative): tabular only (without the tag terms and the author's earlier popularity);
+ text embedding (PCA, no adapter); + adapted text embedding; + perplexity; + inconsistency
signals (similarities); + image embedding (adapted, and every other served feature but the two
below); + tag terms (TF-IDF/SVD fitted in the model); + author popularity (the full model).
Each row is trained on the time-split training posts and scored (SRC, MAE) on the latest posts,
beside the median baseline on the same posts. Logging to MLflow is the evaluate verb's job
(:mod:`smp_platform.pipeline.evaluate`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from smp_platform.modeling.matrix import LABEL
from smp_platform.modeling.metrics import with_baseline

if TYPE_CHECKING:
    from smp_platform.core.config import TrainSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AblationStep:
    name: str
    feature_columns: tuple[str, ...]
    adapted: tuple[str, ...]


AUTHOR_POPULARITY_VIEW = "post_author_popularity"


def ablation_steps(available: list[str]) -> list[AblationStep]:
    """The eight cumulative feature sets, limited to the columns ``available`` in the frame."""
    from feature_repo.feature_views import KINDS, VIEWS, FieldKind, embedding_columns, feature_names
    from smp_platform.modeling.figures import similarity_columns

    present = set(available)

    def keep(names: list[str]) -> list[str]:
        return [n for n in names if n in present]

    def of_group(group: str) -> list[str]:
        return [f.name for v in VIEWS if v.group == group for f in v.features]

    text_embedding = tuple(embedding_columns("text"))
    image_embedding = tuple(embedding_columns("image"))
    terms = keep([name for name, kind in KINDS.items() if kind == FieldKind.TERMS])
    author_popularity = keep(feature_names(AUTHOR_POPULARITY_VIEW))
    later = set(terms) | set(author_popularity)
    tabular = [c for c in keep(of_group("tabular")) if c not in later]
    text = keep(list(text_embedding))
    perplexity = keep(of_group("perplexity"))
    similarities = keep(similarity_columns())
    served = [c for c in keep([f.name for v in VIEWS for f in v.features]) if c not in later]
    image = list(dict.fromkeys([*tabular, *text, *perplexity, *similarities, *served]))
    both = text_embedding + image_embedding
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
        ("+ image embedding", image, both),
        ("+ tag terms", image + terms, both),
        ("+ author popularity (all)", image + terms + author_popularity, both),
    ]
    return [AblationStep(name, tuple(cols), adapted) for name, cols, adapted in cumulative]


def run_ablation(frame: pd.DataFrame, settings: TrainSettings) -> pd.DataFrame:
    """Train and score each ablation row on the time split; one row per step (with its
    ``feature_columns`` and ``adapted``), ``attrs`` n_train / n_valid."""
    from smp_platform.modeling.fit import time_split, train_model

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


MEDIAN_BASELINE = "median baseline"


def format_ablation(table: pd.DataFrame) -> str:
    """The ablation table as fixed-width text: the median baseline first (every row shares the
    split, so its training median), then each row, with the baseline's MAE beside it."""
    shown = table[["step", "n_features", "src", "mae", "baseline_mae"]]
    if len(table):
        first = table.iloc[0]
        baseline = pd.DataFrame(
            [
                {
                    "step": MEDIAN_BASELINE,
                    "n_features": 0,
                    "src": first.get("baseline_src", 0.0),
                    "mae": first["baseline_mae"],
                    "baseline_mae": first["baseline_mae"],
                }
            ]
        )
        shown = pd.concat([baseline, shown], ignore_index=True)
    text = shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    n_train, n_valid = table.attrs.get("n_train"), table.attrs.get("n_valid")
    if n_train and n_valid:
        text += f"\n(trained on the oldest {n_train:,} posts, scored on the newest {n_valid:,})"
    return text
