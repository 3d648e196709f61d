"""Validate one batch of a feature view before it is written to the offline store."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from smp_platform.features.schema import View
from smp_platform.validation.suites import (
    ENTITY_COLUMN,
    ROW_COLUMN,
    build_suite,
    helper_source,
    prepare_frame,
)

MAX_LISTED_POST_IDS = 20

_lock = threading.Lock()
_context: Any = None


@dataclass
class ExpectationFailure:
    """One failed expectation: what GE checked, on which column, and which posts broke it."""

    expectation: str
    column: str | None
    detail: dict[str, Any]
    post_ids: list[str | None] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # positions in the batch, for null post_ids
    unexpected_count: int | None = None

    def describe(self) -> str:
        where = f"{self.expectation}({self.column})" if self.column else self.expectation
        if self.unexpected_count:
            shown = [
                pid if pid is not None else f"<null post_id at row {row}>"
                for pid, row in zip(self.post_ids, self.rows, strict=False)
            ]
            more = ", ..." if self.unexpected_count > len(shown) else ""
            rows = "row" if self.unexpected_count == 1 else "rows"
            return f"{where} on {self.unexpected_count} {rows} [{', '.join(shown)}{more}]"
        observed = self.detail.get("observed_value")
        if "exception" in self.detail:
            return f"{where}: {self.detail['exception']}"
        return f"{where}: observed {observed!r}" if observed is not None else where


@dataclass
class ValidationReport:
    view_name: str
    success: bool
    n_rows: int
    failures: list[ExpectationFailure]
    n_expectations: int = 0
    # GE's own result as JSON-able data, for the operators' record (validation/records.py):
    # this report keeps what the refresh acts on, the record what GE saw.
    result: dict[str, Any] | None = field(default=None, repr=False)

    def summary(self) -> str:
        if self.success:
            return (
                f"{self.view_name}: all {self.n_expectations} expectations passed "
                f"({self.n_rows} rows)"
            )
        parts = "; ".join(f.describe() for f in self.failures)
        return (
            f"{self.view_name}: {len(self.failures)} of {self.n_expectations} expectations "
            f"failed: {parts}"
        )


def _get_context() -> Any:
    # GE is slow to import (~5 s): imported on first use, so `smp --help` stays fast.
    global _context
    if _context is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,  # no telemetry from a batch job, and no network anyway
            progress_bars=ProgressBarsConfig(globally=False),
        )
        _context = gx.get_context(mode="ephemeral", project_config=config)
        _context.data_sources.add_pandas(name="smp_batches")
    return _context


@dataclass
class _ViewValidation:
    batch_definition: Any
    suite: Any
    # GE's validator is not documented as thread-safe: one batch of a view at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)


_definitions: dict[tuple[str, str, tuple[tuple[str, float], ...]], _ViewValidation] = {}


def _view_validation(view: View, null_bounds: Mapping[str, float] | None) -> _ViewValidation:
    """One suite + batch definition per (view as declared, null bounds), built once per
    process."""
    key = (view.name, repr(view.stored_fields), tuple(sorted((null_bounds or {}).items())))
    with _lock:
        if key not in _definitions:
            context = _get_context()
            name = f"{view.name}_{len(_definitions)}"
            asset = context.data_sources.get("smp_batches").add_dataframe_asset(name=name)
            _definitions[key] = _ViewValidation(
                batch_definition=asset.add_batch_definition_whole_dataframe(name),
                suite=context.suites.add(build_suite(view, name, null_bounds)),
            )
        return _definitions[key]


def _failure(result: Any) -> ExpectationFailure:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id",)}
    column = kwargs.get("column")
    info = result.result or {}
    detail: dict[str, Any] = {"kwargs": kwargs}
    for key in (
        "observed_value",
        "unexpected_count",
        "unexpected_percent",
        "partial_unexpected_list",
    ):
        if key in info:
            detail[key] = info[key]
    exception = (result.exception_info or {}).get("exception_message")
    if result.exception_info and result.exception_info.get("raised_exception"):
        detail["exception"] = exception

    post_ids: list[str | None] = []
    rows: list[int] = []
    seen: set[int] = set()
    for entry in info.get("unexpected_index_list") or []:
        if not isinstance(entry, dict) or ROW_COLUMN not in entry:
            continue
        row = int(entry[ROW_COLUMN])
        pid = entry.get(ENTITY_COLUMN)
        # duplicates list every copy: one mention per post is enough
        if row in seen or (pid is not None and pid in post_ids):
            continue
        seen.add(row)
        post_ids.append(None if pd.isna(pid) else str(pid))
        rows.append(row)
        if len(post_ids) >= MAX_LISTED_POST_IDS:
            break
    return ExpectationFailure(
        expectation=config.type,
        column=column,
        detail=detail,
        post_ids=post_ids,
        rows=rows,
        unexpected_count=info.get("unexpected_count"),
    )


def validate_batch(
    view: View,
    frame: pd.DataFrame,
    *,
    embedding_dims: dict[str, int] | None = None,
    null_bounds: Mapping[str, float] | None = None,
) -> ValidationReport:
    """Check one batch of ``view``'s rows with Great Expectations; never raises on bad data.

    ``embedding_dims`` gives the expected length per embedding column (default: the batch's
    most common length); ``null_bounds`` overrides the maximum null fraction per column.
    """
    validation = _view_validation(view, null_bounds)
    prepared, parameters = prepare_frame(view, frame, embedding_dims)
    id_columns = [ENTITY_COLUMN, ROW_COLUMN] if ENTITY_COLUMN in prepared.columns else [ROW_COLUMN]
    # Batch.validate rather than a ValidationDefinition: the latter keeps every result (with
    # COMPLETE unexpected lists) in the context's results store, which grows without bound in a
    # long-running worker. The caller keeps what it needs: this report.
    with validation.lock:
        batch = validation.batch_definition.get_batch(batch_parameters={"dataframe": prepared})
        result = batch.validate(
            validation.suite,
            expectation_parameters=parameters,
            result_format={
                "result_format": "COMPLETE",
                "unexpected_index_column_names": id_columns,
                "return_unexpected_index_query": False,
            },
        )
    missing = {
        c
        for c in (helper_source(r.expectation_config.kwargs.get("column")) for r in result.results)
        if c and c not in frame.columns
    }
    failures = []
    for r in result.results:
        if r.success:
            continue
        column = r.expectation_config.kwargs.get("column")
        # A missing column fails expect_column_to_exist; the errors of every other expectation
        # on it (or on its helpers) would only repeat that.
        if (
            helper_source(column) in missing
            and r.expectation_config.type != "expect_column_to_exist"
        ):
            continue
        failures.append(_failure(r))
    return ValidationReport(
        view_name=view.name,
        success=not failures,
        n_rows=len(frame),
        failures=failures,
        n_expectations=len(result.results),
        result=result.to_json_dict(),
    )
