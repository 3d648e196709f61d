"""Quarantine: the reasons an input row is set aside, and the log that collects them.

A reason is ``"<kind>: <detail>"``; the load summary counts rows by kind. Record models
(:mod:`smp_platform.sources.fields`) raise pydantic errors whose type is a kind's key, so a
validation error becomes a reason without a lookup table per format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from smp_platform.core.errors import SourceError  # noqa: F401 - defined there, raised here

BAD_JSON = "bad JSON"
MISSING_ID = "missing id"
WRONG_TYPE = "wrong type"
BAD_TIME = "bad time"
MISSING_USER = "missing user"
CONFLICTING_DUPLICATE = "conflicting duplicate"
UNKNOWN_POST = "unknown post"
NOT_UTF8 = "not UTF-8"
LINE_TOO_LONG = "line too long"
UNSAFE_MEDIA_PATH = "unsafe media path"
REASON_KINDS = (
    BAD_JSON,
    MISSING_ID,
    WRONG_TYPE,
    BAD_TIME,
    MISSING_USER,
    CONFLICTING_DUPLICATE,
    UNKNOWN_POST,
    NOT_UTF8,
    LINE_TOO_LONG,
    UNSAFE_MEDIA_PATH,
)
# pydantic error types are identifiers: "missing_id" <-> "missing id".
_KIND_OF_ERROR_TYPE = {kind.replace(" ", "_").replace("-", ""): kind for kind in REASON_KINDS}


class BadValue(ValueError):
    """A row cannot be used; it goes to quarantine with this reason."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self.detail}"


def invalid(kind: str, detail: str) -> PydanticCustomError:
    """The error a field validator raises: its type names the quarantine kind."""
    return PydanticCustomError(
        kind.replace(" ", "_").replace("-", ""), "{detail}", {"detail": detail}
    )


def reason_of(error: ValidationError | PydanticCustomError, field: str = "value") -> str:
    """The quarantine reason of a record (its first failing field), or of one ``field``."""
    if isinstance(error, PydanticCustomError):
        return f"{_KIND_OF_ERROR_TYPE.get(error.type, WRONG_TYPE)}: {field} {error.message()}"
    first = error.errors(include_url=False)[0]
    if first["type"] in _KIND_OF_ERROR_TYPE:
        name = ".".join(str(part) for part in first["loc"])
        return f"{_KIND_OF_ERROR_TYPE[first['type']]}: {name} {first['msg']}"
    if first["type"] in ("model_type", "dict_type"):
        return f"{BAD_JSON}: a {type(first['input']).__name__}, expected an object"
    where = ".".join(str(part) for part in first["loc"])  # a check pydantic made itself
    return f"{WRONG_TYPE}: {where}: {first['msg']}"


@dataclass
class QuarantineLog:
    """Collects quarantine rows; ``post_ids`` remembers posts that were rejected."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    post_ids: set[str] = field(default_factory=set)

    def add(self, source_file: str, line: int, post_id: str | None, reason: str, raw: str) -> None:
        self.rows.append(
            {
                "source_file": source_file,
                "line": line,
                "post_id": post_id,
                "reason": reason,
                "raw": raw,
            }
        )

    def reject_post(
        self, source_file: str, line: int, post_id: str | None, reason: str, raw: str
    ) -> None:
        self.add(source_file, line, post_id, reason, raw)
        if post_id is not None:
            self.post_ids.add(post_id)
