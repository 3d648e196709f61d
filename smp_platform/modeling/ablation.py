"""Ablation as in the paper: add one feature group at a time, score each on the same posts.

The rows come from the registered groups' ablation stages (``FeatureGroup.stages``), sorted by
their order and cumulative. With the built-in groups: tabular only (without the tag terms and
the author's earlier popularity); + text embedding (PCA, no adapter); + adapted text embedding;
+ perplexity; + inconsistency signals (similarities); + image embedding (adapted); + tag terms
(TF-IDF/SVD fitted in the model); + author popularity; then one row per group of the user's own.
The last row holds every available feature ("(all)"). Each row is trained on the time-split
training posts and scored (SRC, MAE) on the latest posts, beside the median baseline on the
same posts. Logging to MLflow is the evaluate verb's job (:mod:`smp_platform.pipeline.evaluate`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from smp_platform.features.registry import FeatureGroups
from smp_platform.modeling.fit import time_folds, train_model
from smp_platform.modeling.matrix import LABEL, feature_kinds
from smp_platform.modeling.metrics import with_baseline

if TYPE_CHECKING:
    from smp_platform.core.config import TrainSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AblationStep:
    name: str
    feature_columns: tuple[str, ...]
    adapted: tuple[str, ...]


@dataclass
class _Row:
    order: int
    label: str
    features: list[str] = field(default_factory=list)
    adapt: list[str] = field(default_factory=list)


def ablation_steps(available: Sequence[str], groups: FeatureGroups) -> list[AblationStep]:
    """The cumulative feature sets of the groups' stages, limited to the ``available``
    columns (the frame's); the last one holds every available feature."""
    present = set(available)
    rows: dict[str, _Row] = {}
    for group in groups:
        stages = group.stages()
        claimed = {name for stage in stages for name in stage.features or ()}
        for stage in stages:
            names = stage.features
            if names is None:
                names = tuple(n for n in group.feature_names if n not in claimed)
            row = rows.setdefault(stage.label, _Row(stage.order, stage.label))
            row.order = min(row.order, stage.order)
            row.features += [n for n in names if n in present]
            row.adapt += list(stage.adapt)
    ordered = sorted(rows.values(), key=lambda r: r.order)  # stable: first declared first
    steps: list[AblationStep] = []
    columns: list[str] = []
    adapted: list[str] = []
    for i, row in enumerate(ordered):
        columns += [n for n in row.features if n not in columns]
        adapted += [n for n in row.adapt if n not in adapted]
        name = row.label
        if i == len(ordered) - 1:
            # whatever no stage named enters with the last row, which then holds everything
            fields = [f.name for v in groups.views for f in v.fields]
            columns += [n for n in fields if n in present and n not in columns]
            name += " (all)"
        steps.append(AblationStep(name, tuple(columns), tuple(adapted)))
    return steps


def fold_name(k: int) -> str:
    """The name of time fold ``k``: ``newest`` (the backtest's split), ``earlier``, ..."""
    return "newest" if k == 0 else "earlier" if k == 1 else f"earlier{k}"


def run_ablation(
    frame: pd.DataFrame, settings: TrainSettings, groups: FeatureGroups, *, folds: int = 1
) -> pd.DataFrame:
    """Train and score each ablation row on ``folds`` time folds (the newest first: the time
    split; then the same split of the posts before its window, ...); one row per step (with its
    ``feature_columns`` and ``adapted``), the newest fold's metrics as ``src``, ``mae``, ...
    and fold k's as ``src_fold<k>``; ``attrs`` n_train / n_valid (newest) and ``folds``."""
    splits = time_folds(frame[frame[LABEL].notna()], folds, settings.validation_fraction)
    rows = []
    for step in ablation_steps(list(frame.columns), groups):
        spec = feature_kinds(step.feature_columns, groups.fields)
        row: dict[str, object] = {
            "step": step.name,
            "n_features": len(step.feature_columns),
            "feature_columns": ",".join(step.feature_columns),
            "adapted": ",".join(step.adapted) or "-",
        }
        for k, (train, valid) in enumerate(splits):
            trained = train_model(train, settings, spec, adapted=step.adapted)
            scores = with_baseline(valid[LABEL], trained.predict(valid), trained.train_median)
            suffix = "" if k == 0 else f"_fold{k}"
            row.update({f"{key}{suffix}": value for key, value in scores.items()})
            log.info(
                "ablation %-26s %-8s SRC %.4f  MAE %.4f",
                step.name,
                fold_name(k),
                scores["src"],
                scores["mae"],
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs.update(
        n_train=len(splits[0][0]),
        n_valid=len(splits[0][1]),
        folds=[(fold_name(k), len(t), len(v)) for k, (t, v) in enumerate(splits)],
    )
    return table


MEDIAN_BASELINE = "median baseline"


def format_ablation(table: pd.DataFrame) -> str:
    """The ablation table as fixed-width text: the median baseline first (every row shares the
    split, so its training median), then each row; one fold: with the baseline's MAE beside
    it, several: SRC and MAE per fold."""
    folds = table.attrs.get("folds") or [("newest", 0, 0)]
    if len(folds) == 1:
        return _one_fold(table)
    columns = {"step": "step", "n_features": "n_features"}
    for k, (name, _, _) in enumerate(folds):
        suffix = "" if k == 0 else f"_fold{k}"
        columns |= {f"src{suffix}": f"{name} SRC", f"mae{suffix}": f"{name} MAE"}
    shown = table[list(columns)].rename(columns=columns)
    if len(table):
        baseline = {"step": MEDIAN_BASELINE, "n_features": 0}
        for k, (name, _, _) in enumerate(folds):
            suffix = "" if k == 0 else f"_fold{k}"
            baseline[f"{name} SRC"] = table.iloc[0].get(f"baseline_src{suffix}", 0.0)
            baseline[f"{name} MAE"] = table.iloc[0][f"baseline_mae{suffix}"]
        shown = pd.concat([pd.DataFrame([baseline]), shown], ignore_index=True)
    text = shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    described = "; ".join(f"{name}: {t:,} -> {v:,}" for name, t, v in folds)
    return text + f"\n(time folds, trained on the older posts -> scored on the next: {described})"


def _one_fold(table: pd.DataFrame) -> str:
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
