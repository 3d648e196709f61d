"""Training/serving frame -> model matrix for CatBoost.

Column kinds come from the fields' dtypes and kinds (:func:`feature_kinds`, given the fields the
feature groups declare): ``string`` fields are categorical unless their kind is ``terms`` (a bag
of words), array fields are embeddings, the rest are numeric. The embeddings are adapted
(CLIP-Adapter, cross-fitted on training rows) and reduced with PCA to
``settings.embedding_components`` columns each
(``text_embedding_pc0`` ...); terms get TF-IDF + SVD fitted on the training rows
(``tag_terms_svd0`` ...); scalar signals (similarities, perplexity) stay as they are.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from smp_platform.features.schema import EVENT_TIMESTAMP, Dtype, Field, FieldKind
from smp_platform.modeling.adapter import Adapter, crossfit_transform
from smp_platform.modeling.terms import TermReducer

if TYPE_CHECKING:
    from sklearn.decomposition import PCA

    from smp_platform.core.config import TrainSettings

LABEL = "popularity"
TIMESTAMP = EVENT_TIMESTAMP
MISSING_CATEGORY = "missing"


@dataclass(frozen=True)
class FeatureSpec:
    """Served feature columns by kind, each in the order the caller gave them."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    embedding: tuple[str, ...]
    terms: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.embedding, *self.terms]

    def only(self, columns: Collection[str]) -> FeatureSpec:
        """The columns of this spec that are in ``columns``, by kind, in this spec's order."""
        keep = set(columns)
        return FeatureSpec(
            *(tuple(c for c in part if c in keep) for part in self._parts),
        )

    def without(self, columns: Collection[str]) -> FeatureSpec:
        drop = set(columns)
        return self.only([c for c in self.columns if c not in drop])

    @property
    def _parts(self) -> tuple[tuple[str, ...], ...]:
        return (self.numeric, self.categorical, self.embedding, self.terms)


def feature_kinds(feature_columns: Sequence[str], fields: Mapping[str, Field]) -> FeatureSpec:
    """Split feature columns into numeric / categorical / embedding / terms by their fields'
    dtypes and kinds (``fields``: name -> field, as the registered feature groups declare)."""
    unknown = [c for c in feature_columns if c not in fields]
    if unknown:
        raise ValueError(
            f"unknown feature columns {unknown}: every model feature must be a field of a view "
            "of a registered feature group"
        )
    numeric, categorical, embedding, terms = [], [], [], []
    for column in dict.fromkeys(feature_columns):
        dtype = fields[column].dtype
        if dtype.is_array:
            embedding.append(column)
        elif fields[column].kind == FieldKind.TERMS:
            terms.append(column)
        elif dtype == Dtype.STRING:
            categorical.append(column)
        else:
            numeric.append(column)
    return FeatureSpec(tuple(numeric), tuple(categorical), tuple(embedding), tuple(terms))


def embedding_matrix(values: pd.Series | Sequence[Any], dim: int | None = None) -> np.ndarray:
    """Lists / arrays / None -> an (n, dim) float32 matrix, NaN rows where missing or malformed."""
    items = list(values)
    if dim is None:
        dim = next((len(v) for v in items if _is_vector(v) and len(v) > 0), 0)
    out = np.full((len(items), dim), np.nan, dtype=np.float32)
    for i, value in enumerate(items):
        if _is_vector(value) and len(value) == dim:
            out[i] = np.asarray(value, dtype=np.float32)
    out[~np.isfinite(out).all(axis=1)] = np.nan
    return out


def _is_vector(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def numeric_column(values: pd.Series) -> pd.Series:
    """Numbers as float64; booleans -> 0/1; anything unparseable -> NaN."""
    if values.dtype == object:
        values = values.map(lambda v: float(v) if isinstance(v, bool | np.bool_) else v)
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _numeric_block(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """numeric_column for many columns at once; falls back per column on unparseable values."""
    block = frame.reindex(columns=columns)
    try:
        values = block.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        return pd.DataFrame({c: numeric_column(block[c]) for c in columns}, index=frame.index)
    return pd.DataFrame(values, columns=columns, index=frame.index)


def categorical_column(values: pd.Series) -> pd.Series:
    """Strings for CatBoost, with one category for missing values."""
    values = values.astype(object)
    return values.where(values.notna(), MISSING_CATEGORY).astype(str)


@dataclass
class ReducedEmbedding:
    """How one embedding column becomes ``<name>_pc<i>`` columns."""

    name: str
    dim: int
    adapter: Adapter | None
    pca: PCA

    @property
    def output_columns(self) -> list[str]:
        return [f"{self.name}_pc{i}" for i in range(self.pca.n_components_)]

    def reduce(self, matrix: np.ndarray) -> np.ndarray:
        out = np.full((len(matrix), self.pca.n_components_), np.nan)
        present = np.isfinite(matrix).all(axis=1)
        if present.any():
            out[present] = self.pca.transform(matrix[present])
        return out

    def transform(self, values: pd.Series) -> np.ndarray:
        matrix = embedding_matrix(values, self.dim)
        if self.adapter is not None:
            matrix = self.adapter.transform(matrix)
        return self.reduce(matrix)


@dataclass
class EmbeddingReducer:
    """Adapter (cross-fitted) then PCA, per embedding column; fitted on training rows.

    ``adapted``: the embeddings that get the CLIP-Adapter (None: every one, as the paper adapts
    CLIP features before the regressor); the others are only reduced with PCA."""

    settings: TrainSettings
    adapted: Collection[str] | None = None
    embeddings: dict[str, ReducedEmbedding] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def fit_transform(
        self, frame: pd.DataFrame, columns: Sequence[str], y: np.ndarray, order: np.ndarray
    ) -> pd.DataFrame:
        """Training rows' reduced embeddings, adapted out-of-fold (never with their own label)."""
        from sklearn.decomposition import PCA

        parts = []
        for name in columns:
            matrix = embedding_matrix(frame[name])
            present = np.isfinite(matrix).all(axis=1) if matrix.shape[1] else np.zeros(0, bool)
            if matrix.shape[1] == 0 or present.sum() < 2:
                self.dropped.append(name)
                continue
            adapter = None
            if self.adapted is None or name in self.adapted:
                matrix, adapter = crossfit_transform(
                    matrix, y, order, self.settings.adapter_folds, self.settings
                )
            n_components = min(self.settings.embedding_components, matrix.shape[1], present.sum())
            pca = PCA(n_components=int(n_components), random_state=self.settings.seed)
            pca.fit(matrix[present])
            reduced = ReducedEmbedding(name, matrix.shape[1], adapter, pca)
            self.embeddings[name] = reduced
            parts.append(
                pd.DataFrame(
                    reduced.reduce(matrix), columns=reduced.output_columns, index=frame.index
                )
            )
        return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """New posts' reduced embeddings (adapter trained on all training posts)."""
        parts = [
            pd.DataFrame(
                reduced.transform(_column_or_none(frame, name)),
                columns=reduced.output_columns,
                index=frame.index,
            )
            for name, reduced in self.embeddings.items()
        ]
        return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)

    @property
    def output_columns(self) -> list[str]:
        return [c for reduced in self.embeddings.values() for c in reduced.output_columns]


def _column_or_none(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


@dataclass
class ModelMatrix:
    """The frame -> CatBoost matrix transformation, fitted once on the training rows.

    Columns that are null on every training row are dropped and remembered: serving still
    supplies them (same feature service) and they are ignored.
    """

    spec: FeatureSpec
    settings: TrainSettings
    adapted: Collection[str] | None = None  # None: every embedding (EmbeddingReducer)
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    reducer: EmbeddingReducer | None = None
    term_reducers: dict[str, TermReducer] = field(default_factory=dict)

    @property
    def feature_columns(self) -> list[str]:
        """The served columns the model reads (its input contract)."""
        return self.spec.columns

    @property
    def output_columns(self) -> list[str]:
        embedded = self.reducer.output_columns if self.reducer else []
        terms = [c for reducer in self.term_reducers.values() for c in reducer.output_columns]
        return [*self.numeric, *self.categorical, *embedded, *terms]

    def __setstate__(self, state: dict[str, Any]) -> None:
        # versions registered before terms existed unpickle without term reducers
        state.setdefault("term_reducers", {})
        self.__dict__.update(state)

    def outputs_of(self, feature_columns: Collection[str]) -> list[str]:
        """The matrix columns derived from some of the served columns (a model that leaves
        the others out reads exactly these: every reduction is fitted per column)."""
        wanted = set(feature_columns)
        out = [c for c in [*self.numeric, *self.categorical] if c in wanted]
        if self.reducer is not None:
            out += [
                c
                for name, reduced in self.reducer.embeddings.items()
                if name in wanted
                for c in reduced.output_columns
            ]
        out += [
            c
            for name, reducer in self.term_reducers.items()
            if name in wanted
            for c in reducer.output_columns
        ]
        return out

    def fit_transform(self, frame: pd.DataFrame, y: np.ndarray, order: np.ndarray) -> pd.DataFrame:
        """Fit on training rows (sorted or not) and return their matrix."""
        missing = [c for c in self.spec.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"training frame lacks feature columns {missing}")
        numeric = {c: numeric_column(frame[c]) for c in self.spec.numeric}
        self.numeric = [c for c, v in numeric.items() if v.notna().any()]
        self.categorical = [c for c in self.spec.categorical if frame[c].notna().any()]
        self.reducer = EmbeddingReducer(self.settings, self.adapted)
        embedded = self.reducer.fit_transform(frame, self.spec.embedding, y, order)
        terms, no_terms = [], []
        self.term_reducers = {}
        for name in self.spec.terms:
            reducer = TermReducer(
                name,
                components=self.settings.term_components,
                min_df=self.settings.term_min_df,
                seed=self.settings.seed,
            )
            reduced = reducer.fit_transform(frame[name])
            if not reducer.output_columns:
                no_terms.append(name)
                continue
            self.term_reducers[name] = reducer
            terms.append(reducer.frame(reduced, frame.index))
        self.dropped = [
            *(c for c in self.spec.numeric if c not in self.numeric),
            *(c for c in self.spec.categorical if c not in self.categorical),
            *self.reducer.dropped,
            *no_terms,
        ]
        matrix = pd.DataFrame({c: numeric[c] for c in self.numeric}, index=frame.index)
        for c in self.categorical:
            matrix[c] = categorical_column(frame[c])
        return pd.concat([matrix, embedded, *terms], axis=1)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Matrix for new posts; extra columns are ignored, missing ones read as null."""
        if self.reducer is None:
            raise RuntimeError("ModelMatrix.transform before fit_transform")
        matrix = _numeric_block(frame, self.numeric)
        if self.categorical:
            # One conversion for every categorical column (the online path predicts one row,
            # where per-column pandas calls dominate); same values as categorical_column.
            block = frame.reindex(columns=self.categorical).astype(object)
            matrix[self.categorical] = block.where(block.notna(), MISSING_CATEGORY).astype(str)
        terms = [
            reducer.frame(reducer.transform(_column_or_none(frame, name)), frame.index)
            for name, reducer in self.term_reducers.items()
        ]
        return pd.concat([matrix, self.reducer.transform(frame), *terms], axis=1)[
            self.output_columns
        ]
