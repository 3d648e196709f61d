"""Feature drift: a compact reference profile of a model's training frame, and the PSI, null
shares and unseen categories of a batch of posts against it.

The profile is what training logs with each registered version (``drift/reference_profile.json``),
so measuring drift needs that JSON only, never the training frame again:

- numeric feature: cut points at the reference's quantiles (``bins``, fewer when each bin would
  hold under ``MIN_BIN_SHARE`` of the rows), the reference's share of rows in each bin and its
  share of nulls;
- categorical feature: the reference's frequencies of its values that hold at least
  ``MIN_BIN_SHARE`` of the rows (at most ``TOP_CATEGORIES``; the rest in one ``<other>`` bin),
  its null share, and the known values (up to ``MAX_KNOWN_CATEGORIES``) to find values never
  seen in training;
- terms (a bag of words): the number of terms per post, as a numeric feature;
- embedding: the L2 norm and the projections on the reference's first ``EMBEDDING_DIRECTIONS``
  principal directions (mean and directions stored), each as a numeric feature. A batch whose
  texts are about something else moves along those directions; 384 per-dimension PSIs would
  only add noise and drown the tabular features in the share of drifted features.

PSI = sum over bins of (batch - reference) * ln(batch / reference), with the null share as a
bin of its own (a feature that goes missing drifts) and every share floored at ``PSI_FLOOR``
(an empty bin would otherwise make it infinite). Common reading: < 0.1 stable, 0.1-0.25 some
shift, > 0.25 a major shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smp_platform.modeling.figures import pyplot, save_figure
from smp_platform.modeling.matrix import FeatureSpec, embedding_matrix, numeric_column

PROFILE_VERSION = 1
PSI_FLOOR = 1e-4
TOP_CATEGORIES = 20
# The smallest share of the reference rows a bin holds. Rarer categories share one <other> bin,
# and a mostly-null feature gets fewer value bins: a PSI over many tiny bins measures the
# sampling noise of a small batch (real posts 300..400 of the sample against the first 300:
# 8 of 36 features "drifted" with 1 %-bins, 4 with 5 %-bins).
MIN_BIN_SHARE = 0.05
MAX_KNOWN_CATEGORIES = 5000
EMBEDDING_DIRECTIONS = 3
MAX_PCA_ROWS = 5000
OTHER = "<other>"
NULL = "<null>"

TABLE_COLUMNS = [
    "feature",
    "kind",
    "psi",
    "drifted",
    "reference_null_share",
    "batch_null_share",
    "unseen_share",
    "unseen_examples",
]


# -- the measure ----------------------------------------------------------------------------
def psi(reference: Sequence[float], batch: Sequence[float], floor: float = PSI_FLOOR) -> float:
    """Population stability index of two distributions over the same bins (shares, each
    summing to 1); shares below ``floor`` count as ``floor``."""
    expected = np.clip(np.asarray(reference, dtype=np.float64), floor, None)
    actual = np.clip(np.asarray(batch, dtype=np.float64), floor, None)
    if expected.shape != actual.shape:
        raise ValueError(f"bins differ: {expected.shape} vs {actual.shape}")
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_cuts(values: pd.Series, bins: int) -> list[float]:
    """Inner cut points at the quantiles of the non-null values (ties merged): bin i holds
    values in (cut[i-1], cut[i]], the first from -inf, the last to +inf."""
    present = values.dropna().to_numpy(dtype=np.float64)
    present = present[np.isfinite(present)]
    if len(present) == 0 or bins < 2:
        return []
    quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(c) for c in np.unique(quantiles)]


def numeric_shares(values: pd.Series, cuts: Sequence[float]) -> tuple[list[float], float]:
    """(share of all rows in each bin, share of null rows): together they sum to 1."""
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    present = np.isfinite(numbers)
    total = len(numbers)
    if total == 0:
        return [0.0] * (len(cuts) + 1), 0.0
    index = np.searchsorted(np.asarray(cuts, dtype=np.float64), numbers[present], side="left")
    counts = np.bincount(index, minlength=len(cuts) + 1)
    return [float(c) / total for c in counts], float((~present).sum()) / total


def category_shares(values: pd.Series, top: Sequence[str]) -> tuple[list[float], float]:
    """(shares of the ``top`` categories then ``<other>``, null share), as shares of all rows."""
    total = len(values)
    if total == 0:
        return [0.0] * (len(top) + 1), 0.0
    present = values.dropna().astype(str)
    counts = present.value_counts()
    shares = [float(counts.get(c, 0)) / total for c in top]
    other = (len(present) - sum(int(counts.get(c, 0)) for c in top)) / total
    return [*shares, other], float(total - len(present)) / total


# -- the profile ----------------------------------------------------------------------------
def _term_counts(values: pd.Series) -> pd.Series:
    return values.map(
        lambda v: float(len(str(v).split())) if isinstance(v, str) else np.nan
    ).astype("float64")


def value_bins(values: pd.Series, bins: int) -> int:
    """Bins for the non-null values: ``bins``, fewer when the values are too few for each bin
    to hold ``MIN_BIN_SHARE`` of the rows (a feature null on 87 % of the posts gets 2 bins)."""
    present = values.notna().mean() if len(values) else 0.0
    return max(1, min(bins, int(present / MIN_BIN_SHARE + 1e-9)))


def _numeric_entry(kind: str, source: str, values: pd.Series, bins: int) -> dict[str, Any]:
    cuts = numeric_cuts(values, value_bins(values, bins))
    shares, null_share = numeric_shares(values, cuts)
    return {
        "kind": kind,
        "source": source,
        "cuts": cuts,
        "shares": shares,
        "null_share": null_share,
    }


def _embedding_summary(
    matrix: np.ndarray, index: pd.Index, mean: np.ndarray, directions: np.ndarray
) -> dict[str, pd.Series]:
    """Each row's norm and its projections on ``directions`` (float64 ``matrix``, NaN rows
    for missing embeddings)."""
    if matrix.shape[1]:
        present = np.isfinite(matrix).all(axis=1)
    else:
        present = np.zeros(len(matrix), bool)
    out = {"norm": np.full(len(matrix), np.nan)}
    # rounded: unit-norm encoders differ only by float error, which must not make bins
    out["norm"][present] = np.round(np.linalg.norm(matrix[present], axis=1), 4)
    projected = np.full((len(matrix), len(directions)), np.nan)
    if present.any() and len(directions):
        projected[present] = (matrix[present] - mean) @ directions.T
    for i in range(len(directions)):
        out[f"pc{i}"] = projected[:, i]
    return {name: pd.Series(v, index=index) for name, v in out.items()}


def build_profile(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    *,
    bins: int = 10,
    seed: int = 0,
    model: str = "",
) -> dict[str, Any]:
    """The reference profile of the columns of ``spec`` that ``frame`` has (JSON-able)."""
    spec = spec.only(frame.columns)
    features: dict[str, dict[str, Any]] = {}
    embeddings: dict[str, dict[str, Any]] = {}
    for column in spec.numeric:
        features[column] = _numeric_entry("numeric", column, numeric_column(frame[column]), bins)
    for column in spec.categorical:
        values = frame[column].astype(object)
        counts = values.dropna().astype(str).value_counts()
        common = counts[counts >= MIN_BIN_SHARE * len(values)]
        top = [str(c) for c in common.index[:TOP_CATEGORIES]]
        shares, null_share = category_shares(values, top)
        features[column] = {
            "kind": "categorical",
            "source": column,
            "categories": top,
            "shares": shares,
            "null_share": null_share,
            "known": [str(c) for c in counts.index[:MAX_KNOWN_CATEGORIES]],
            "known_truncated": bool(len(counts) > MAX_KNOWN_CATEGORIES),
        }
    for column in spec.terms:
        features[f"{column}:terms"] = _numeric_entry(
            "terms", column, _term_counts(frame[column]), bins
        )
    rng = np.random.default_rng(seed)
    for column in spec.embedding:
        matrix = embedding_matrix(frame[column]).astype(np.float64)
        present = matrix[np.isfinite(matrix).all(axis=1)] if matrix.shape[1] else matrix[:0]
        if len(present) < 2:
            continue  # nothing to compare with (e.g. no image weights: the model dropped it)
        if len(present) > MAX_PCA_ROWS:
            present = present[rng.choice(len(present), MAX_PCA_ROWS, replace=False)]
        mean = present.mean(axis=0)
        k = min(EMBEDDING_DIRECTIONS, len(present) - 1, present.shape[1])
        _, _, vt = np.linalg.svd(present - mean, full_matrices=False)
        directions = vt[:k]
        embeddings[column] = {
            "dim": int(matrix.shape[1]),
            "mean": [float(x) for x in mean],
            "directions": [[float(x) for x in row] for row in directions],
        }
        summary = _embedding_summary(matrix, frame.index, mean, directions)
        for name, values in summary.items():
            features[f"{column}:{name}"] = _numeric_entry("embedding", column, values, bins)
    return {
        "version": PROFILE_VERSION,
        "model": model,
        "n_rows": len(frame),
        "bins": bins,
        "floor": PSI_FLOOR,
        "features": features,
        "embeddings": embeddings,
    }


# -- a batch against a profile ---------------------------------------------------------------
@dataclass
class DriftReport:
    """Per feature: PSI, null shares and unseen categories of a batch against a profile, and
    the verdict of the bound (``psi_bound`` exceeded on more than ``max_drifted_share`` of the
    measured features, with at least ``min_posts`` posts in the batch)."""

    table: pd.DataFrame
    n_batch: int
    n_reference: int
    psi_bound: float
    max_drifted_share: float
    min_posts: int
    reference: str = ""  # what the batch was compared with, e.g. "champion v3's training frame"
    ignored: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        rows = self.table[self.table["drifted"]].sort_values("psi", ascending=False)
        return [str(f) for f in rows["feature"]]

    @property
    def drifted_share(self) -> float:
        return len(self.drifted) / len(self.table) if len(self.table) else 0.0

    @property
    def max_psi(self) -> float:
        return float(self.table["psi"].max()) if len(self.table) else 0.0

    @property
    def too_small(self) -> bool:
        return self.n_batch < self.min_posts

    @property
    def beyond_bound(self) -> bool:
        """The batch drifted beyond the configured bound (a small batch never does)."""
        return not self.too_small and self.drifted_share > self.max_drifted_share

    def summary(self) -> str:
        names = ", ".join(self.drifted[:5]) + (" ..." if len(self.drifted) > 5 else "")
        line = (
            f"{len(self.drifted)} of {len(self.table)} features with PSI > {self.psi_bound:g} "
            f"(share {self.drifted_share:.2f}, bound {self.max_drifted_share:.2f}; "
            f"max PSI {self.max_psi:.3f}) on {self.n_batch:,} posts vs "
            f"{self.reference or 'the reference'} ({self.n_reference:,} posts)"
        )
        if names:
            line += f": {names}"
        if self.too_small:
            line += f" [fewer than {self.min_posts} posts: reported, never blocking]"
        return line

    def reason(self) -> str:
        """Why a promotion is refused, for the decision's record."""
        return f"validation posts drifted beyond the bound: {self.summary()}"

    def metrics(self) -> dict[str, float]:
        return {
            "drift_max_psi": self.max_psi,
            "drift_drifted_share": self.drifted_share,
            "drift_drifted_features": float(len(self.drifted)),
            "drift_batch_posts": float(self.n_batch),
        }


def _batch_values(
    frame: pd.DataFrame,
    name: str,
    entry: dict[str, Any],
    embeddings: dict[str, Any],
    cache: dict[str, dict[str, pd.Series]],
) -> pd.Series:
    source = entry["source"]
    missing = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    column = frame[source] if source in frame.columns else missing
    if entry["kind"] == "numeric":
        return numeric_column(column)
    if entry["kind"] == "terms":
        return _term_counts(column)
    if entry["kind"] == "categorical":
        return column.astype(object)
    # embedding summaries: project once per embedding column
    if source not in cache:
        spec = embeddings[source]
        dim = int(spec["dim"])
        cache[source] = _embedding_summary(
            embedding_matrix(column, dim).astype(np.float64),
            column.index,
            np.asarray(spec["mean"], dtype=np.float64),
            np.asarray(spec["directions"], dtype=np.float64).reshape(-1, dim),
        )
    return cache[source][name.split(":", 1)[1]]


def measure(
    profile: dict[str, Any],
    batch: pd.DataFrame,
    *,
    psi_bound: float = 0.25,
    max_drifted_share: float = 0.2,
    min_posts: int = 30,
    ignore: Sequence[str] = (),
    reference: str = "",
) -> DriftReport:
    """The drift of ``batch`` (served feature columns) against ``profile``."""
    floor = float(profile.get("floor", PSI_FLOOR))
    rows = []
    cache: dict[str, dict[str, pd.Series]] = {}  # embedding summaries, once per column
    ignored = []
    for name, entry in profile["features"].items():
        if name in ignore or entry["source"] in ignore:
            ignored.append(name)
            continue
        values = _batch_values(batch, name, entry, profile.get("embeddings", {}), cache)
        unseen_share, examples = np.nan, ""
        if entry["kind"] == "categorical":
            shares, null_share = category_shares(values, entry["categories"])
            present = values.dropna().astype(str)
            unseen = present[~present.isin(set(entry["known"]))]
            unseen_share = len(unseen) / len(values) if len(values) else 0.0
            examples = ", ".join(str(v) for v in unseen.value_counts().index[:5])
        else:
            shares, null_share = numeric_shares(values, entry["cuts"])
        value = (
            psi([*entry["shares"], entry["null_share"]], [*shares, null_share], floor)
            if len(values)
            else 0.0
        )
        rows.append(
            {
                "feature": name,
                "kind": entry["kind"],
                "psi": value,
                "drifted": value > psi_bound,
                "reference_null_share": float(entry["null_share"]),
                "batch_null_share": null_share,
                "unseen_share": unseen_share,
                "unseen_examples": examples,
            }
        )
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table = table.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)
    return DriftReport(
        table=table,
        n_batch=len(batch),
        n_reference=int(profile.get("n_rows", 0)),
        psi_bound=psi_bound,
        max_drifted_share=max_drifted_share,
        min_posts=min_posts,
        reference=reference,
        ignored=ignored,
    )


def plot_drift(report: DriftReport, path: Path) -> Path:
    """PSI per feature (bars, red above the bound) beside the null shares that moved."""
    plt = pyplot()
    table = report.table.iloc[::-1]
    height = max(3.0, 0.22 * len(table) + 1.5)
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, height), sharey=True, gridspec_kw={"width_ratios": [3, 2]}
    )
    colors = ["tab:red" if d else "tab:blue" for d in table["drifted"]]
    left.barh(table["feature"], table["psi"], color=colors)
    bound = f"bound {report.psi_bound:g}"
    left.axvline(report.psi_bound, color="black", linestyle="--", label=bound)
    left.set_xlabel("PSI (batch vs reference)")
    left.legend(loc="lower right", fontsize=8)
    left.set_title(
        f"{len(report.drifted)}/{len(report.table)} drifted on {report.n_batch:,} posts"
        + ("  BEYOND BOUND" if report.beyond_bound else "")
    )
    ys = np.arange(len(table))
    right.barh(ys - 0.2, table["reference_null_share"], height=0.4, label="reference")
    right.barh(ys + 0.2, table["batch_null_share"], height=0.4, label="batch")
    right.set_xlabel("share of nulls")
    right.legend(loc="lower right", fontsize=8)
    right.set_xlim(0, 1)
    fig.suptitle(f"Feature drift vs {report.reference or 'the reference'}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def write_artifacts(report: DriftReport, out_dir: Path) -> list[Path]:
    """``drift.csv`` (the table), ``drift.json`` (the verdict and settings) and ``drift.png``."""
    import json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table_path = out_dir / "drift.csv"
    report.table.to_csv(table_path, index=False, float_format="%.6g")
    meta_path = out_dir / "drift.json"
    meta_path.write_text(
        json.dumps(
            {
                "summary": report.summary(),
                "beyond_bound": report.beyond_bound,
                "reference": report.reference,
                "n_batch": report.n_batch,
                "n_reference": report.n_reference,
                "psi_bound": report.psi_bound,
                "max_drifted_share": report.max_drifted_share,
                "min_posts": report.min_posts,
                "drifted": report.drifted,
                "ignored": report.ignored,
            },
            indent=2,
        )
    )
    return [table_path, meta_path, plot_drift(report, out_dir / "drift.png")]
