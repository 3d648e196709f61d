"""The paper's analysis as plots: inconsistency and perplexity by popularity band (Fig. 4),
text embeddings before/after adaptation (Fig. 5), and feature importance.

Every function writes PNGs (matplotlib Agg) and returns their paths; the caller logs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from smp_platform.features.schema import Field, FieldKind
from smp_platform.modeling.matrix import LABEL, embedding_matrix

if TYPE_CHECKING:
    from smp_platform.modeling.fit import TrainedModel

POPULARITY_BANDS = 5
MAX_PROJECTED_POSTS = 2000
TOP_FEATURES = 30


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (its folder made if needed) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def similarity_columns(fields: Iterable[Field]) -> list[str]:
    """The inconsistency signals: the fields of kind ``similarity``."""
    return [f.name for f in fields if f.kind == FieldKind.SIMILARITY]


def popularity_bands(popularity: pd.Series, bands: int = POPULARITY_BANDS) -> pd.Series:
    """Quantile band of each post's popularity, labelled ``Q1`` (least popular) upwards."""
    ranks = popularity.rank(method="first")
    codes = pd.qcut(ranks, q=min(bands, max(1, popularity.notna().sum())), labels=False)
    return codes.map(lambda c: f"Q{int(c) + 1}" if pd.notna(c) else None)


def plot_feature_importance(importance: pd.Series, path: Path, top: int = TOP_FEATURES) -> Path:
    """Horizontal bar chart of CatBoost feature importance (top ``top``)."""
    plt = pyplot()
    shown = importance.sort_values(ascending=False).head(top)[::-1]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.25 * len(shown) + 1)))
    ax.barh(list(shown.index), shown.to_numpy())
    ax.set_xlabel("CatBoost importance (PredictionValuesChange)")
    ax.set_title("Feature importance")
    fig.tight_layout()
    return save_figure(fig, path)


def _band_means(frame: pd.DataFrame, column: str, bands: pd.Series) -> pd.DataFrame:
    values = pd.to_numeric(frame[column], errors="coerce")
    grouped = values.groupby(bands)
    stats = pd.DataFrame({"mean": grouped.mean(), "sem": grouped.sem(), "n": grouped.count()})
    return stats.sort_index()


def plot_similarity_by_band(
    frame: pd.DataFrame, path: Path, similarities: Sequence[str]
) -> Path | None:
    """Mean image-text / tag / caption similarity (± 1.96 s.e.) per popularity band."""
    columns = [c for c in similarities if c in frame.columns and frame[c].notna().any()]
    if not columns:
        return None
    plt = pyplot()
    bands = popularity_bands(frame[LABEL])
    fig, ax = plt.subplots(figsize=(6, 4))
    for column in columns:
        stats = _band_means(frame, column, bands)
        ax.errorbar(
            stats.index,
            stats["mean"],
            yerr=1.96 * stats["sem"].fillna(0),
            marker="o",
            capsize=3,
            label=column,
        )
    ax.set_xlabel("popularity band (quantiles, Q1 least popular)")
    ax.set_ylabel("cosine similarity")
    ax.set_title("Inconsistency signals by popularity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_perplexity_by_band(frame: pd.DataFrame, path: Path) -> Path | None:
    """Distribution of the text's log-perplexity per popularity band."""
    column = next(
        (
            c
            for c in ("log_perplexity", "perplexity")
            if c in frame.columns and frame[c].notna().any()
        ),
        None,
    )
    if column is None:
        return None
    plt = pyplot()
    bands = popularity_bands(frame[LABEL])
    values = pd.to_numeric(frame[column], errors="coerce")
    labels = sorted(b for b in bands.dropna().unique())
    groups = [values[(bands == b) & values.notna()].to_numpy() for b in labels]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.boxplot(groups, showfliers=False)
    ax.set_xticks(range(1, len(labels) + 1), labels)
    ax.plot(
        range(1, len(labels) + 1),
        [g.mean() if len(g) else np.nan for g in groups],
        "o-",
        label="mean",
    )
    ax.set_xlabel("popularity band (quantiles, Q1 least popular)")
    ax.set_ylabel(column)
    ax.set_title("Perplexity of the post text by popularity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_adaptation(
    frame: pd.DataFrame,
    trained: TrainedModel,
    path: Path,
    column: str = "text_embedding",
    seed: int = 0,
) -> Path | None:
    """2-D PCA of an embedding before and after the model's adapter, coloured by popularity.

    The adapter is the one fitted on all training posts: pass posts it did not see (the
    validation posts) to look at out-of-sample adaptation.
    """
    from sklearn.decomposition import PCA

    reducer = trained.model.matrix.reducer
    reduced = reducer.embeddings.get(column) if reducer else None
    if column not in frame.columns or reduced is None or reduced.adapter is None:
        return None
    raw = embedding_matrix(frame[column], reduced.dim)
    present = np.isfinite(raw).all(axis=1) & frame[LABEL].notna().to_numpy()
    if present.sum() < 3:
        return None
    rows = np.flatnonzero(present)
    if len(rows) > MAX_PROJECTED_POSTS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_PROJECTED_POSTS, replace=False))
    popularity = frame[LABEL].to_numpy(dtype=float)[rows]
    panels = {
        "before adaptation": raw[rows],
        "after adaptation": reduced.adapter.transform(raw[rows]),
    }
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, (title, matrix) in zip(axes, panels.items(), strict=True):
        points = PCA(n_components=2, random_state=seed).fit_transform(matrix)
        scatter = ax.scatter(points[:, 0], points[:, 1], c=popularity, cmap="viridis", s=8)
        ax.set_title(f"{column}: {title}")
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
    fig.colorbar(scatter, ax=axes, label="popularity")
    return save_figure(fig, path)


def write_report(
    frame: pd.DataFrame,
    trained_model: TrainedModel,
    out_dir: Path,
    *,
    similarities: Sequence[str] = (),
) -> list[Path]:
    """Write the analysis PNGs for labelled posts in ``frame`` (``similarities``: the
    inconsistency signals to draw by band); plots without data are skipped."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labelled = frame[frame[LABEL].notna()].reset_index(drop=True)
    written = [
        plot_similarity_by_band(labelled, out_dir / "similarity_by_popularity.png", similarities),
        plot_perplexity_by_band(labelled, out_dir / "perplexity_by_popularity.png"),
        plot_adaptation(labelled, trained_model, out_dir / "text_embedding_adaptation.png"),
        plot_feature_importance(
            trained_model.feature_importance, out_dir / "feature_importance.png"
        ),
    ]
    return [path for path in written if path is not None]
