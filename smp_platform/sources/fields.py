"""Typed fields of the source record models: what a value may look like in the files.

Missing -> None, usable -> the canonical value, present but unusable -> a pydantic error whose
type is the quarantine kind and whose message says what is wrong with the value
(:func:`smp_platform.sources.quarantine.invalid`); the reason adds the field's name. Record models
list their fields in the order the files are checked, so the first failing field is the reason.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator

from smp_platform.sources.quarantine import BAD_TIME, MISSING_ID, WRONG_TYPE, invalid

# Timestamps outside this window are typos or unit mistakes (milliseconds for seconds).
_EARLIEST = datetime(1990, 1, 1)
_LATEST = datetime(2100, 1, 1)
# SMPD writes absent values as "", "None" or "nan" inside otherwise numeric columns.
_MISSING_TEXTS = frozenset({"", "none", "null", "nan"})


class SourceRecord(BaseModel):
    """One record of a source file. Fields are declared ``= absent()``: a key the file does not
    have is read as missing (None) and still goes through its field's check."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def absent() -> Any:
    """The default of every record field: missing, and validated like a value that is."""
    return Field(None, validate_default=True)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in _MISSING_TEXTS


def _looks_numeric(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


def parse_id(value: Any) -> str:
    """An identifier as a string (ids can be ints in SMPD); missing -> ``missing id``."""
    if _is_missing(value):
        raise invalid(MISSING_ID, "is missing")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid(WRONG_TYPE, f"is {value!r}, expected a string or an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise invalid(WRONG_TYPE, f"is {value!r}, expected a string or an integer")
        value = int(value)
    return str(value).strip()


def parse_count(value: Any) -> int | None:
    """A non-negative count; negative or missing -> None (real data has both)."""
    if _is_missing(value):
        return None
    number: float | int
    if isinstance(value, bool):
        raise invalid(WRONG_TYPE, f"is {value!r}, expected a count")
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise invalid(WRONG_TYPE, f"is {value!r}, expected a count") from None
    else:
        raise invalid(WRONG_TYPE, f"is {value!r}, expected a count")
    if isinstance(number, float) and (math.isnan(number) or not number.is_integer()):
        raise invalid(WRONG_TYPE, f"is {value!r}, expected a whole number")
    count = int(number)
    return count if count >= 0 else None


def parse_float(value: Any) -> float | None:
    """A real number (numeric strings accepted, as SMPD writes them); missing -> None."""
    if _is_missing(value):
        return None
    if isinstance(value, bool):
        raise invalid(WRONG_TYPE, f"is {value!r}, expected a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise invalid(WRONG_TYPE, f"is {value!r}, expected a number") from None
    else:
        raise invalid(WRONG_TYPE, f"is {value!r}, expected a number")
    if math.isinf(number):
        raise invalid(WRONG_TYPE, f"is {value!r}, expected a finite number")
    return None if math.isnan(number) else number


def parse_text(value: Any) -> str | None:
    """Free text; empty text is valid and kept as ""."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise invalid(WRONG_TYPE, f"is {type(value).__name__}, expected text")


def parse_tags(value: Any) -> list[str] | None:
    """A list of words, from a JSON list or a space-separated string; empty is valid."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        if not all(
            isinstance(tag, str | int | float) and not isinstance(tag, bool) for tag in value
        ):
            raise invalid(WRONG_TYPE, "holds non-text items, expected a list of words")
        return [str(tag) for tag in value]
    raise invalid(WRONG_TYPE, f"is {type(value).__name__}, expected a list of words")


def parse_bool(value: Any) -> bool | None:
    """A flag written as true/false, 0/1 or "0"/"1"; missing -> None."""
    if _is_missing(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    raise invalid(WRONG_TYPE, f"is {value!r}, expected 0/1 or true/false")


def parse_timestamp(value: Any, *, required: bool = True) -> datetime | None:
    """A UTC-naive timestamp from unix seconds (number or digits) or ISO-like text.

    Text without a zone is taken as UTC; text with a zone is converted to UTC.
    """
    if _is_missing(value):
        if required:
            raise invalid(BAD_TIME, "is missing")
        return None
    moment: datetime
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | float) or (isinstance(value, str) and _looks_numeric(value)):
            moment = datetime.fromtimestamp(float(value), tz=UTC).replace(tzinfo=None)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value.strip())
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC).replace(tzinfo=None)
        else:
            raise TypeError
    except (TypeError, ValueError, OverflowError, OSError):
        raise invalid(BAD_TIME, f"is {value!r}, not a time") from None
    if not _EARLIEST <= moment < _LATEST:
        raise invalid(BAD_TIME, f"is {value!r} ({moment:%Y-%m-%d}), out of range")
    return moment


def parse_utc_offset_hours(value: Any) -> float | None:
    """A UTC offset in hours, from a number or text like "+05:30" / "-0800"."""
    if _is_missing(value):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip().upper().removeprefix("UTC").removeprefix("GMT")
        if _looks_numeric(text):
            return float(text)
        sign = -1.0 if text.startswith("-") else 1.0
        digits = text.lstrip("+-").replace(":", "")
        if digits.isdigit() and len(digits) in (3, 4):
            return sign * (int(digits[:-2]) + int(digits[-2:]) / 60)
    raise invalid(WRONG_TYPE, f"is {value!r}, expected a UTC offset like +05:30")


def parse_score(value: Any) -> float:
    """A label: a real number that must be there."""
    score = parse_float(value)
    if score is None:
        raise invalid(WRONG_TYPE, "is missing")
    return score


def _optional_timestamp(value: Any) -> datetime | None:
    return parse_timestamp(value, required=False)


# Errors name no field: the record's error location does (quarantine.reason_of).
Id = Annotated[str, PlainValidator(parse_id)]
Count = Annotated[int | None, PlainValidator(parse_count)]
Real = Annotated[float | None, PlainValidator(parse_float)]
Score = Annotated[float, PlainValidator(parse_score)]
Text = Annotated[str | None, PlainValidator(parse_text)]
Tags = Annotated[list[str] | None, PlainValidator(parse_tags)]
Flag = Annotated[bool | None, PlainValidator(parse_bool)]
Time = Annotated[datetime, PlainValidator(parse_timestamp)]
OptionalTime = Annotated[datetime | None, PlainValidator(_optional_timestamp)]
UtcOffset = Annotated[float | None, PlainValidator(parse_utc_offset_hours)]
