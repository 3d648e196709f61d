"""TF-IDF + truncated SVD of a term-string column, fitted on the training posts only.

Lives in the model (part of the registered pyfunc), not in a feature view: the vocabulary,
the IDF weights and the SVD basis are fitted on labelled data's posts and change with every
training run. The view stores only the stateless term string (:mod:`smp_platform.features.tags`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer


def _documents(values: pd.Series | Sequence[Any]) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]


@dataclass
class TermReducer:
    """``<name>_svd<i>`` columns from a column of space-separated terms.

    Terms seen in fewer than ``min_df`` training posts are ignored (a term of one post is
    that post's identity, not a signal). A post without any known term gets zeros, which
    the SVD maps to the origin; with too few distinct terms to fit, nothing is produced.
    """

    name: str
    components: int = 16
    min_df: int = 3
    seed: int = 0
    vectorizer: TfidfVectorizer | None = field(default=None, repr=False)
    svd: TruncatedSVD | None = field(default=None, repr=False)

    @property
    def output_columns(self) -> list[str]:
        if self.svd is None:
            return []
        return [f"{self.name}_svd{i}" for i in range(self.svd.n_components)]

    def fit_transform(self, values: pd.Series | Sequence[Any]) -> np.ndarray:
        """Fit on the training posts' term strings; their reduced matrix."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        documents = _documents(values)
        vectorizer = TfidfVectorizer(
            token_pattern=r"\S+",
            lowercase=False,  # the view stores normalised terms already
            min_df=min(self.min_df, max(1, len(documents))),
            sublinear_tf=True,
        )
        try:
            tfidf = vectorizer.fit_transform(documents)
        except ValueError:  # no term at all (or none frequent enough)
            return np.zeros((len(documents), 0))
        n_components = min(self.components, tfidf.shape[1] - 1, len(documents) - 1)
        if n_components < 1:
            return np.zeros((len(documents), 0))
        svd = TruncatedSVD(n_components=n_components, random_state=self.seed)
        reduced = svd.fit_transform(tfidf)
        self.vectorizer, self.svd = vectorizer, svd
        return np.asarray(reduced, dtype=np.float64)

    def transform(self, values: pd.Series | Sequence[Any]) -> np.ndarray:
        """New posts' reduced matrix (unknown terms are ignored)."""
        documents = _documents(values)
        if self.vectorizer is None or self.svd is None:
            return np.zeros((len(documents), 0))
        return np.asarray(
            self.svd.transform(self.vectorizer.transform(documents)), dtype=np.float64
        )

    def frame(self, matrix: np.ndarray, index: pd.Index) -> pd.DataFrame:
        return pd.DataFrame(matrix, columns=self.output_columns, index=index)
