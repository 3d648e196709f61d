"""The registered model compiled for the request path: numpy only, no pandas, no torch.

:class:`Scorer` reads the fitted pieces of the champion's ``PopularityModel`` (the model
matrix's columns, each embedding's adapter weights and PCA, the CatBoost booster) once, when the
champion is loaded, and applies the same arithmetic to a :class:`FeatureBlock`. The batch path
(``pyfunc.predict`` on a pandas frame) stays the reference: the integration tests hold the
service's predictions equal to it.

Per-request cost on one row (measured on this 2-core machine, see benchmarks/online_latency.py):
pandas ModelMatrix.transform + CatBoost on a DataFrame ~ 4 ms; this path ~ 0.2 ms (the demo's
champion, 3 boosters and tag terms: 1.9 ms before the merged booster and the numpy terms).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from smp_platform.online.block import FeatureBlock

MISSING_CATEGORY = "missing"  # smp_platform.modeling.matrix.MISSING_CATEGORY


@dataclass(frozen=True)
class _Embedding:
    name: str
    dim: int
    adapter: tuple[np.ndarray, ...] | None  # W1, b1, W2, b2 (float32)
    ratio: float
    components_t: np.ndarray  # PCA components_.T
    mean_projection: np.ndarray  # mean_ @ components_.T
    scale: np.ndarray | None  # whitening divisor

    def reduce(self, vectors: list[np.ndarray | None]) -> np.ndarray:
        """embedding_matrix -> Adapter.transform -> ReducedEmbedding.reduce, in numpy."""
        n = len(vectors)
        out = np.full((n, self.components_t.shape[1]), np.nan)
        empty = np.full(self.dim, np.nan, dtype=np.float32)
        matrix = np.stack(
            [v if v is not None and len(v) == self.dim else empty for v in vectors]
        ).astype(np.float32, copy=False)
        present = np.asarray(np.isfinite(matrix).all(axis=1))
        if not present.any():
            return out
        x = matrix[present]
        if self.adapter is not None:
            w1, b1, w2, b2 = self.adapter
            hidden = np.maximum(x @ w1.T + b1, 0)
            bottleneck = np.maximum(hidden @ w2.T + b2, 0)
            x = (self.ratio * bottleneck + (1.0 - self.ratio) * x).astype(np.float32)
            keep = np.isfinite(x).all(axis=1)
            present[np.flatnonzero(present)[~keep]] = False
            x = x[keep]
        projected = x @ self.components_t
        projected -= self.mean_projection
        if self.scale is not None:
            projected /= self.scale
        out[present] = projected
        return out


def _adapter_weights(adapter: Any) -> tuple[tuple[np.ndarray, ...], float]:
    state = adapter.state
    keys = ["bottleneck.0.weight", "bottleneck.0.bias", "bottleneck.2.weight", "bottleneck.2.bias"]
    return tuple(np.asarray(state[k], dtype=np.float32) for k in keys), float(adapter.ratio)


def _embedding(reduced: Any) -> _Embedding:
    pca = reduced.pca
    components_t = np.asarray(pca.components_).T
    scale = None
    if pca.whiten:
        scale = np.sqrt(pca.explained_variance_)
        scale[scale < np.finfo(scale.dtype).eps] = np.finfo(scale.dtype).eps
    adapter, ratio = (None, 0.0)
    if reduced.adapter is not None:
        adapter, ratio = _adapter_weights(reduced.adapter)
    return _Embedding(
        reduced.name,
        reduced.dim,
        adapter,
        ratio,
        components_t,
        np.reshape(pca.mean_, (1, -1)) @ components_t,
        scale,
    )


class _Terms:
    """A fitted ``TermReducer`` (TF-IDF + SVD) applied in numpy.

    sklearn's ``vectorizer.transform`` + ``svd.transform`` cost 0.60 ms for one post (input
    validation, a sparse matrix per call) against ~0.02 ms here, and the posts of a batch are
    reduced together (one numpy step per term position, not per post); the arithmetic is sklearn's:
    ``1 + log(count)`` (``sublinear_tf``) times the term's idf, l2-normalised, times the SVD's
    components. Any other vectorizer setting keeps sklearn's own transform.
    """

    def __init__(self, name: str, reducer: Any) -> None:
        vectorizer, svd = reducer.vectorizer, reducer.svd
        self.name = name
        self.reducer = reducer
        self.width = len(reducer.output_columns)
        self.exact = (
            vectorizer.analyzer == "word"
            and vectorizer.ngram_range == (1, 1)
            and vectorizer.preprocessor is None
            and vectorizer.tokenizer is None
            and vectorizer.strip_accents is None
            and vectorizer.stop_words is None
            and not vectorizer.lowercase
            and not vectorizer.binary
            and vectorizer.norm == "l2"
            and vectorizer.use_idf
        )
        self.pattern = re.compile(vectorizer.token_pattern)
        self.sublinear = bool(vectorizer.sublinear_tf)
        self.vocabulary: dict[str, int] = {
            str(k): int(v) for k, v in vectorizer.vocabulary_.items()
        }
        self.idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        self.components_t = np.ascontiguousarray(np.asarray(svd.components_, dtype=np.float64).T)

    def reduce(self, strings: list[Any]) -> np.ndarray:
        if not self.exact:
            return np.asarray(self.reducer.transform(strings), dtype=np.float64)
        n = len(strings)
        out = np.zeros((n, self.width))
        rows: list[int] = []
        columns: list[int] = []
        counts: list[int] = []
        for row, text in enumerate(strings):
            if text is None or (isinstance(text, float) and math.isnan(text)):
                continue
            found: dict[int, int] = {}
            for token in self.pattern.findall(str(text)):
                column = self.vocabulary.get(token)
                if column is not None:
                    found[column] = found.get(column, 0) + 1
            # columns ascending: a sorted CSR row (no known term: the origin, as sklearn's
            # zero row)
            for column in sorted(found):
                rows.append(row)
                columns.append(column)
                counts.append(found[column])
        if not rows:
            return out
        # sklearn's order of operations, to the bit: CatBoost compares float32 values with
        # borders that can sit on a training value, so a last-bit difference once moved one
        # prediction of 400 by 0.0013. Every post's sums are accumulated one term after the
        # other, in column order (scipy's csr @ dense, the l2 norm): the loops below run over
        # the k-th term of every post at once, never summing across a post's terms in BLAS.
        row_of = np.asarray(rows, dtype=np.intp)
        column_of = np.asarray(columns, dtype=np.intp)
        tf = np.asarray(counts, dtype=np.float64)
        if self.sublinear:
            tf = np.log(tf)
            tf += 1.0
        weights = tf * self.idf[column_of]
        starts = np.flatnonzero(np.r_[True, row_of[1:] != row_of[:-1]])
        lengths = np.diff(np.r_[starts, len(row_of)])
        posts = row_of[starts]
        total = np.zeros(len(starts))
        for k in range(int(lengths.max())):
            live = lengths > k
            at = starts[live] + k
            total[live] += weights[at] * weights[at]
        weights /= np.repeat(np.sqrt(total), lengths)
        for k in range(int(lengths.max())):
            live = lengths > k
            at = starts[live] + k
            out[posts[live]] += weights[at, None] * self.components_t[column_of[at]]
        return out


class Scorer:
    """``PopularityModel.predict_frame`` for a :class:`FeatureBlock`."""

    def __init__(self, predictor: Any) -> None:
        matrix = predictor.matrix
        if not predictor.boosters or matrix.reducer is None:
            raise RuntimeError("the registered model is not fitted (no booster or reducer)")
        # The model is the mean of its boosters (one per seed), as PopularityModel.predict_frame.
        self.boosters = list(predictor.boosters)
        # ... predicted as one model: catboost.sum_models with weights 1/n is the same trees
        # with scaled leaves (max difference 8e-15 on the demo's champion), and one predict
        # call instead of three cost 0.02 ms instead of 0.48 ms for one post.
        self.model = self.boosters[0]
        if len(self.boosters) > 1:
            from catboost import sum_models

            n = len(self.boosters)
            self.model = sum_models(self.boosters, weights=[1.0 / n] * n)
        self.numeric: list[str] = list(matrix.numeric)
        self.categorical: list[str] = list(matrix.categorical)
        self.embeddings = [_embedding(r) for r in matrix.reducer.embeddings.values()]
        # Bags of terms: the fitted TF-IDF + SVD of the model (sklearn, no pandas needed).
        self.terms = [
            _Terms(name, reducer)
            for name, reducer in getattr(matrix, "term_reducers", {}).items()
            if reducer.output_columns
        ]
        self.columns: list[str] = list(matrix.output_columns)
        n_embedded = sum(e.components_t.shape[1] for e in self.embeddings)
        n_terms = sum(t.width for t in self.terms)
        if len(self.columns) != len(self.numeric) + len(self.categorical) + n_embedded + n_terms:
            raise RuntimeError("model matrix columns do not match its parts")
        self._cat_positions = list(
            range(len(self.numeric), len(self.numeric) + len(self.categorical))
        )
        # The served feature behind each model column (an embedding's PCs map to the embedding).
        self.column_features: list[str] = [
            *self.numeric,
            *self.categorical,
            *(e.name for e in self.embeddings for _ in range(e.components_t.shape[1])),
            *(t.name for t in self.terms for _ in range(t.width)),
        ]

    def matrix(self, block: FeatureBlock, which: np.ndarray) -> np.ndarray:
        """The model matrix of rows ``which`` of ``block``: an object array in the model's column
        order (numeric, categorical, reduced embeddings), CatBoost's input.

        Measured for 1,000 posts: a CatBoost Pool from this array 2 ms, from a list of row
        lists 16 ms.
        """
        n = len(block)
        m = len(which)
        absent: list[Any] = [None] * n
        nan = np.full(n, np.nan)
        out = np.empty((m, len(self.columns)), dtype=object)
        col = 0
        for name in self.numeric:
            out[:, col] = block.numeric.get(name, nan)[which]
            col += 1
        for name in self.categorical:
            strings = block.strings.get(name, absent)
            out[:, col] = [MISSING_CATEGORY if (v := strings[i]) is None else v for i in which]
            col += 1
        for e in self.embeddings:
            vectors = block.embeddings.get(e.name, absent)
            reduced = e.reduce([vectors[i] for i in which])
            out[:, col : col + reduced.shape[1]] = reduced
            col += reduced.shape[1]
        for t in self.terms:
            strings = block.strings.get(t.name, absent)
            reduced = t.reduce([strings[i] for i in which])
            out[:, col : col + reduced.shape[1]] = reduced
            col += reduced.shape[1]
        return out

    def predict(self, block: FeatureBlock, which: np.ndarray) -> np.ndarray:
        """Popularity for rows ``which`` of ``block`` (float64)."""
        if len(which) == 0:
            return np.zeros(0)
        from catboost import Pool

        which = np.asarray(which).tolist()
        matrix = self.matrix(block, which)
        pool = Pool(matrix, cat_features=self._cat_positions)
        # one thread: the service's concurrency comes from worker processes
        return np.asarray(self.model.predict(pool, thread_count=1), dtype=np.float64)

    def explain(self, block: FeatureBlock, which: np.ndarray) -> tuple[np.ndarray, float]:
        """CatBoost's SHAP values of rows ``which`` (one column per model column, in
        :attr:`column_features` order) and the base value: each row's values plus the base
        value sum to its prediction."""
        from catboost import Pool

        matrix = self.matrix(block, np.asarray(which).tolist())
        pool = Pool(matrix, cat_features=self._cat_positions)
        # SHAP values are linear in the model: those of the mean of the boosters are the mean
        # of theirs, base value included.
        values = np.mean(
            [
                np.asarray(
                    booster.get_feature_importance(data=pool, type="ShapValues", thread_count=1),
                    dtype=np.float64,
                )
                for booster in self.boosters
            ],
            axis=0,
        )
        return values[:, :-1], float(values[0, -1])
