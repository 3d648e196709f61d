"""Expectation suites per feature view, derived from ``feature_repo.feature_views``.

Names and dtypes come from the Feast views (the one place for them); this module only adds what
a dtype cannot say: value ranges, how many nulls a column may have, and the embedding checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from feature_repo.data_sources import EVENT_TIMESTAMP
from feature_repo.entities import POST_ID
from feature_repo.feature_views import BOOKKEEPING_FIELDS, VIEW_FIELDS, Dtype

if TYPE_CHECKING:
    import great_expectations as gx

ENTITY_COLUMN = POST_ID
TIMESTAMP_COLUMN = EVENT_TIMESTAMP
# Helper column with the row's position: GE reports it next to post_id, so a null post_id can
# still be pointed at.
ROW_COLUMN = "__row"

# Core features may be null on at most this fraction of a batch (override per column).
DEFAULT_MAX_NULL_FRACTION = 0.5
# Cosine similarities computed in float32 can overshoot +-1 by rounding.
SIMILARITY_EPSILON = 1e-4
UNIT_NORM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ColumnRule:
    """What a column's values must satisfy beyond its dtype (``None``: no bound)."""

    min_value: float | None = None
    max_value: float | None = None
    strict_min: bool = False
    # 1.0: the column may be entirely null (a group switched off, or a source without it).
    max_null_fraction: float = DEFAULT_MAX_NULL_FRACTION
    value_set: tuple[object, ...] | None = None
    unit_norm: bool = False  # embeddings only


NON_NEGATIVE = ColumnRule(min_value=0)
OPTIONAL = ColumnRule(max_null_fraction=1.0)
OPTIONAL_NON_NEGATIVE = ColumnRule(min_value=0, max_null_fraction=1.0)
SIMILARITY = ColumnRule(min_value=-1 - SIMILARITY_EPSILON, max_value=1 + SIMILARITY_EPSILON)
REQUIRED = ColumnRule(max_null_fraction=0.0)

# Rules keyed by field name (names are unique across views). Fields not listed get the default
# rule (finite if numeric, at most DEFAULT_MAX_NULL_FRACTION null). Many author/media/geo columns
# exist in one dataset and not the other (SMPD has no follower counts, SMP-Video no geo or
# categories): fully null allowed.
FIELD_RULES: dict[str, ColumnRule] = {
    "author_follower_count_log": OPTIONAL_NON_NEGATIVE,
    "author_following_count_log": OPTIONAL_NON_NEGATIVE,
    "author_likes_count_log": OPTIONAL_NON_NEGATIVE,
    "author_post_count_log": NON_NEGATIVE,
    "author_digg_count_log": OPTIONAL_NON_NEGATIVE,
    "author_friend_count_log": OPTIONAL_NON_NEGATIVE,
    "author_likes_per_post_log": OPTIONAL_NON_NEGATIVE,
    "author_follower_following_log_ratio": OPTIONAL,
    "author_is_pro": ColumnRule(value_set=(0.0, 1.0), max_null_fraction=1.0),
    "author_account_age_days": OPTIONAL,  # "as reported": clocks disagree, sign not checked
    "author_prior_posts": ColumnRule(min_value=0, max_null_fraction=0.0),
    # null for an author's first post in the warehouse, which can be most posts
    "author_days_since_previous_post": OPTIONAL_NON_NEGATIVE,
    "post_hour": ColumnRule(min_value=0, max_value=23, max_null_fraction=0.0),
    "post_weekday": ColumnRule(min_value=0, max_value=6, max_null_fraction=0.0),
    "post_month": ColumnRule(min_value=1, max_value=12, max_null_fraction=0.0),
    "post_day_of_year": ColumnRule(min_value=1, max_value=366, max_null_fraction=0.0),
    "post_epoch_days": REQUIRED,
    "title_length": NON_NEGATIVE,
    "title_word_count": NON_NEGATIVE,
    "title_hashtag_count": NON_NEGATIVE,
    "title_uppercase_ratio": ColumnRule(min_value=0, max_value=1),
    "title_digit_count": NON_NEGATIVE,
    "tag_count": NON_NEGATIVE,
    "tags_length": NON_NEGATIVE,
    "tag_terms": REQUIRED,  # "" when a post has no tags, never null
    "category": OPTIONAL,
    "subcategory": OPTIONAL,
    "concept": OPTIONAL,
    "media_type": OPTIONAL,
    "media_width": OPTIONAL_NON_NEGATIVE,
    "media_height": OPTIONAL_NON_NEGATIVE,
    "media_aspect_ratio": OPTIONAL_NON_NEGATIVE,
    "media_duration": OPTIONAL_NON_NEGATIVE,
    "music_duration": OPTIONAL_NON_NEGATIVE,
    "music_is_original": OPTIONAL,
    "latitude": ColumnRule(min_value=-90, max_value=90, max_null_fraction=1.0),
    "longitude": ColumnRule(min_value=-180, max_value=180, max_null_fraction=1.0),
    "geo_accuracy": OPTIONAL_NON_NEGATIVE,
    "author_labelled_prior_posts": ColumnRule(min_value=0, max_null_fraction=0.0),
    # null while the author has no earlier labelled post: most posts of a fresh stream
    "author_popularity_mean": OPTIONAL,
    "author_popularity_max": OPTIONAL,
    "author_popularity_last": OPTIONAL,
    "text_embedding": ColumnRule(unit_norm=True),
    "text_tags_similarity": ColumnRule(
        min_value=SIMILARITY.min_value, max_value=SIMILARITY.max_value, max_null_fraction=1.0
    ),  # null when a post has no tags
    "caption_title_similarity": ColumnRule(
        min_value=SIMILARITY.min_value, max_value=SIMILARITY.max_value, max_null_fraction=1.0
    ),  # null while no captioner is configured
    "image_embedding": ColumnRule(unit_norm=True),
    "image_title_similarity": SIMILARITY,
    "perplexity": ColumnRule(min_value=1, strict_min=True),
    "log_perplexity": ColumnRule(min_value=0, strict_min=True),
    "text_token_count": NON_NEGATIVE,
}
# Every row says what it was computed from: a null here would make it recomputed forever.
FIELD_RULES.update({_field.name: REQUIRED for _field in BOOKKEEPING_FIELDS})


def _check_rules_name_declared_fields() -> None:
    # A renamed field must not leave a rule silently checking nothing.
    declared = {f.name for fields in VIEW_FIELDS.values() for f in fields}
    unknown = sorted(set(FIELD_RULES) - declared)
    if unknown:
        raise ValueError(f"validation rules name undeclared fields {unknown}")


def is_embedding(dtype: Dtype) -> bool:
    return dtype.is_array


def column_rules(
    view_name: str, null_bounds: Mapping[str, float] | None = None
) -> dict[str, tuple[Dtype, ColumnRule]]:
    """Each declared field of ``view_name`` with its dtype and rule (``null_bounds`` overrides)."""
    if view_name not in VIEW_FIELDS:
        raise KeyError(f"unknown feature view {view_name!r}; known: {sorted(VIEW_FIELDS)}")
    _check_rules_name_declared_fields()
    out: dict[str, tuple[Dtype, ColumnRule]] = {}
    for field in VIEW_FIELDS[view_name]:
        rule = FIELD_RULES.get(field.name, ColumnRule())
        if null_bounds and field.name in null_bounds:
            rule = ColumnRule(**{**rule.__dict__, "max_null_fraction": null_bounds[field.name]})
        out[field.name] = (field.dtype, rule)
    return out


def dim_parameter(column: str) -> str:
    return f"{column}_dim"


def build_suite(
    view_name: str, suite_name: str, null_bounds: Mapping[str, float] | None = None
) -> gx.ExpectationSuite:
    """The expectation suite of one view, not yet added to a context.

    GE builds suites only while a context is active: call through the runner, which creates one.
    """
    import great_expectations as gx  # slow to import (~5 s): only when a suite is built

    ex = gx.expectations
    suite = gx.ExpectationSuite(name=suite_name)
    add = suite.add_expectation

    add(ex.ExpectColumnToExist(column=ENTITY_COLUMN))
    add(ex.ExpectColumnValuesToNotBeNull(column=ENTITY_COLUMN))
    add(ex.ExpectColumnValuesToBeUnique(column=ENTITY_COLUMN))
    add(ex.ExpectColumnToExist(column=TIMESTAMP_COLUMN))
    add(ex.ExpectColumnValuesToNotBeNull(column=TIMESTAMP_COLUMN))

    for name, (dtype, rule) in column_rules(view_name, null_bounds).items():
        add(ex.ExpectColumnToExist(column=name))
        if rule.max_null_fraction < 1.0:
            add(ex.ExpectColumnValuesToNotBeNull(column=name, mostly=1.0 - rule.max_null_fraction))
        if is_embedding(dtype):
            # GE has no expectation on list-valued cells: prepare_frame derives scalar helper
            # columns (length, all-finite, L2 norm) and ordinary expectations check those.
            dim = {"$PARAMETER": dim_parameter(name)}
            add(
                ex.ExpectColumnValuesToBeBetween(
                    column=f"{name}__dim", min_value=dim, max_value=dim
                )
            )
            add(ex.ExpectColumnValuesToBeInSet(column=f"{name}__finite", value_set=[True]))
            if rule.unit_norm:
                add(
                    ex.ExpectColumnValuesToBeBetween(
                        column=f"{name}__norm",
                        min_value=1 - UNIT_NORM_TOLERANCE,
                        max_value=1 + UNIT_NORM_TOLERANCE,
                    )
                )
            continue
        if dtype.is_numeric:
            # "between" alone lets +-inf through where a side is unbounded: a helper column says
            # whether each non-null value is a finite number.
            add(ex.ExpectColumnValuesToBeInSet(column=f"{name}__finite", value_set=[True]))
        if rule.value_set is not None:
            add(ex.ExpectColumnValuesToBeInSet(column=name, value_set=list(rule.value_set)))
        if rule.min_value is not None or rule.max_value is not None:
            add(
                ex.ExpectColumnValuesToBeBetween(
                    column=name,
                    min_value=rule.min_value,
                    max_value=rule.max_value,
                    strict_min=rule.strict_min,
                )
            )
    return suite


def _finite_flags(values: pd.Series) -> pd.Series:
    """True where a value is a finite number, False where not a finite number, None where null."""
    numeric = pd.to_numeric(values, errors="coerce").astype("float64")
    flags = pd.Series(np.isfinite(numeric.to_numpy()), index=values.index, dtype=object)
    # A non-null value that is not a number at all is not finite either.
    flags[values.isna()] = None
    return flags


def _embedding_helpers(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Per row: length, all values finite, L2 norm (None where the cell is null)."""
    n = len(values)
    dims = np.full(n, np.nan)
    finite = np.empty(n, dtype=object)
    norms = np.full(n, np.nan)
    cells = values.to_numpy(dtype=object)
    by_len: dict[int, list[int]] = {}
    for i, cell in enumerate(cells):
        if cell is None or (isinstance(cell, float) and np.isnan(cell)):
            finite[i] = None
            continue
        by_len.setdefault(len(cell), []).append(i)
    # One stacked array per length: a batch of 2,000 x 512 checks in milliseconds.
    for length, rows in by_len.items():
        idx = np.asarray(rows)
        dims[idx] = length
        if length == 0:
            finite[idx] = True
            norms[idx] = 0.0
            continue
        try:
            block = np.asarray([np.asarray(cells[i], dtype="float64") for i in rows])
        except (TypeError, ValueError):  # a cell with non-numbers in it
            block = np.asarray(
                [pd.to_numeric(pd.Series(list(cells[i])), errors="coerce") for i in rows],
                dtype="float64",
            )
        ok = np.isfinite(block).all(axis=1)
        finite[idx] = ok
        with np.errstate(over="ignore", invalid="ignore"):
            lengths = np.linalg.norm(np.where(np.isfinite(block), block, 0.0), axis=1)
        norms[idx] = np.where(ok, lengths, np.nan)
    index = values.index
    return (
        pd.Series(dims, index=index),
        pd.Series(finite, index=index, dtype=object),
        pd.Series(norms, index=index),
    )


def modal_length(dims: pd.Series) -> int | None:
    known = dims.dropna()
    if known.empty:
        return None
    return int(known.mode().iloc[0])


def prepare_frame(
    view_name: str,
    frame: pd.DataFrame,
    embedding_dims: Mapping[str, int] | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """A copy of ``frame`` with the helper columns the suite checks, and the suite parameters."""
    prepared = frame.reset_index(drop=True).copy()
    prepared[ROW_COLUMN] = np.arange(len(prepared))
    parameters: dict[str, int] = {}
    for name, (dtype, _rule) in column_rules(view_name).items():
        if name not in prepared.columns:
            continue  # ExpectColumnToExist reports it
        if is_embedding(dtype):
            dims, finite, norms = _embedding_helpers(prepared[name])
            prepared[f"{name}__dim"] = dims
            prepared[f"{name}__finite"] = finite
            prepared[f"{name}__norm"] = norms
            expected = (embedding_dims or {}).get(name)
            if expected is None:
                expected = modal_length(dims)
            # No non-null embedding: any dimension is vacuously right.
            parameters[dim_parameter(name)] = int(expected) if expected is not None else 0
        elif dtype.is_numeric:
            prepared[f"{name}__finite"] = _finite_flags(prepared[name])
    return prepared, parameters


def helper_source(column: str | None) -> str | None:
    """The declared column a helper column was derived from (itself for declared columns)."""
    if column is None:
        return None
    return column.split("__", 1)[0] if "__" in column.strip("_") else column
