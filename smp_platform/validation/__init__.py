"""Great Expectations checks on feature batches: a failing batch is not written; every batch's
result is kept, and a refresh's results become Data Docs (:mod:`.records`)."""

from smp_platform.validation.records import build_data_docs, keep_results
from smp_platform.validation.runner import ExpectationFailure, ValidationReport, validate_batch

__all__ = [
    "ExpectationFailure",
    "ValidationReport",
    "build_data_docs",
    "keep_results",
    "validate_batch",
]
