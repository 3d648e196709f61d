"""Expectation suites per feature view, derived from the view's fields: names and dtypes, and
the rule each field declares (:class:`~smp_platform.features.schema.Rule`: value ranges, how
many nulls a column may have, unit-norm embeddings). Nothing here names a feature.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from smp_platform.features.schema import EVENT_TIMESTAMP, POST_ID, Dtype, Rule, View

if TYPE_CHECKING:
    import great_expectations as gx

ENTITY_COLUMN = POST_ID
TIMESTAMP_COLUMN = EVENT_TIMESTAMP
# Helper column with the row's position: GE reports it next to post_id, so a null post_id can
# still be pointed at.
ROW_COLUMN = "__row"
UNIT_NORM_TOLERANCE = 1e-3


def is_embedding(dtype: Dtype) -> bool:
    return dtype.is_array


def column_rules(
    view: View, null_bounds: Mapping[str, float] | None = None
) -> dict[str, tuple[Dtype, Rule]]:
    """Each stored field of ``view`` with its dtype and rule (``null_bounds`` overrides)."""
    out: dict[str, tuple[Dtype, Rule]] = {}
    for field in view.stored_fields:
        rule = field.rule
        if null_bounds and field.name in null_bounds:
            rule = dataclasses.replace(rule, max_null_fraction=null_bounds[field.name])
        out[field.name] = (field.dtype, rule)
    return out


def dim_parameter(column: str) -> str:
    return f"{column}_dim"


def build_suite(
    view: View, suite_name: str, null_bounds: Mapping[str, float] | None = None
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

    for name, (dtype, rule) in column_rules(view, null_bounds).items():
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
    view: View,
    frame: pd.DataFrame,
    embedding_dims: Mapping[str, int] | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """A copy of ``frame`` with the helper columns the suite checks, and the suite parameters."""
    prepared = frame.reset_index(drop=True).copy()
    prepared[ROW_COLUMN] = np.arange(len(prepared))
    parameters: dict[str, int] = {}
    for name, (dtype, _rule) in column_rules(view).items():
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
