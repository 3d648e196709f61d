"""Great Expectations checks on feature batches: a failing batch is not written."""

from smp_platform.validation.runner import ExpectationFailure, ValidationReport, validate_batch

__all__ = ["ExpectationFailure", "ValidationReport", "validate_batch"]
