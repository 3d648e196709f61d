"""A post not stored yet (a draft to score, a fresh post to push), given in the fields of a source
format: ``{"format": "<name>", "<block>": {...}, ...}``, one block per file kind of the format.

Each format's reader declares its blocks (:class:`DraftBlock`: a record model of the format's
own, so a draft is checked exactly as a file row is) and how the blocks make a post
(:class:`SourceReader.parse_draft`); the service's request bodies, the push body and the CLI's
``--format`` choices are derived from these declarations. A bad value is a :class:`DraftError`
with the reason the quarantine would give.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from smp_platform.core.tables import ParsedBatch
from smp_platform.sources.quarantine import reason_of

# The post id of a draft that names none; a pushed post may not take it.
DRAFT_POST_ID = "draft"


class DraftError(ValueError):
    """The draft is not a valid post of its format (the message says which field and why)."""


@dataclass
class Draft:
    """A parsed draft: warehouse post columns, and author columns when the draft gave some."""

    post: dict[str, Any]
    author: dict[str, Any] | None

    @property
    def user_id(self) -> str:
        return str(self.post["user_id"])

    @property
    def posted_at(self) -> datetime:
        return self.post["posted_at"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class DraftBlock:
    """One block of a draft's body: a row of one of the format's files."""

    name: str
    record: type  # the format's record model (a pydantic SourceRecord)
    required: bool
    description: str


@dataclass(frozen=True)
class SourceReader:
    """A dataset format: how its files are read, and how a draft in its fields is parsed.

    ``read(path, with_labels=..., max_line_bytes=...)`` returns the load's rows and quarantine;
    ``parse_draft(body)`` a :class:`Draft`; ``id_field`` is (block, field) of the post's id in
    a draft body, which a pushed post must give.
    """

    name: str
    description: str
    read: Callable[..., ParsedBatch]
    parse_draft: Callable[[Mapping[str, Any]], Draft]
    blocks: tuple[DraftBlock, ...]
    id_field: tuple[str, str]
    read_files: str = ""  # what a dataset folder holds, for the CLI's help

    def body_model_name(self) -> str:
        """``smp-video`` -> ``SmpVideoDraft``: the request body's schema name."""
        return "".join(part.capitalize() for part in self.name.split("-")) + "Draft"


def block(body: Mapping[str, Any], name: str, *, required: bool) -> dict[str, Any] | None:
    """A block of a draft's body (a copy), None when an optional one is absent."""
    value = body.get(name)
    if value is None:
        if required:
            raise DraftError(f"bad JSON: the draft has no {name!r} block")
        return None
    if not isinstance(value, Mapping):
        raise DraftError(f"bad JSON: {name} is a {type(value).__name__}, expected an object")
    return dict(value)


def validated(model: Any, record: dict[str, Any], block_name: str) -> Any:
    """``record`` checked by a record model; a :class:`DraftError` naming the field otherwise."""
    try:
        return model.model_validate(record)
    except ValidationError as error:
        kind, _, detail = reason_of(error).partition(": ")
        raise DraftError(f"{kind}: {block_name}.{detail}") from None
