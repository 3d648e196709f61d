"""Dataset readers: SMP-Video and SMPD files -> canonical warehouse rows plus quarantine.

``read_source`` never drops input silently: rows it cannot use come back in
``ParsedBatch.quarantine`` with the file, the 1-based line, the post id when known, a reason
("<kind>: <detail>", kinds in ``REASON_KINDS``) and the raw text. Input it cannot read at all
raises :class:`SourceError`.

Modules: ``smp_video`` and ``smpd`` (one reader and its record models per format, each
registered by one line in :mod:`smp_platform.core.formats`), ``draft`` (the reader's interface,
and a draft in a format's fields), ``fields`` (the typed values records are made of), ``files``
(lines and JSON documents read as untrusted input), ``media`` (media paths confined to the
dataset), ``quarantine`` (reasons and their log), ``assembly`` (content hashes, deduplication,
the batch). The tables they fill are :mod:`smp_platform.core.tables`'.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smp_platform.core.formats import FORMATS, READERS
from smp_platform.core.tables import (
    AUTHOR_COLUMNS,
    LABEL_COLUMNS,
    POST_COLUMNS,
    QUARANTINE_COLUMNS,
    ParsedBatch,
    reason_kind,
)
from smp_platform.sources.assembly import content_hash, gc_paused
from smp_platform.sources.draft import Draft, DraftError, SourceReader
from smp_platform.sources.files import MAX_LINE_BYTES
from smp_platform.sources.quarantine import REASON_KINDS, SourceError

__all__ = [
    "AUTHOR_COLUMNS",
    "FORMATS",
    "LABEL_COLUMNS",
    "MAX_LINE_BYTES",
    "POST_COLUMNS",
    "QUARANTINE_COLUMNS",
    "REASON_KINDS",
    "Draft",
    "DraftError",
    "ParsedBatch",
    "SourceError",
    "SourceReader",
    "content_hash",
    "parse_draft",
    "read_source",
    "readers",
    "reason_kind",
    "source_reader",
]


def source_reader(fmt: str) -> SourceReader:
    """The reader of a registered format (:data:`smp_platform.core.formats.READERS`); its
    module is imported on first use, so reading one format never imports another's parser."""
    if fmt not in READERS:
        raise SourceError(f"unknown source format {fmt!r}: choose one of {', '.join(FORMATS)}")
    found = importlib.import_module(READERS[fmt]).reader
    if not isinstance(found, SourceReader) or found.name != fmt:
        raise SourceError(f"{READERS[fmt]}.reader is not the SourceReader of {fmt!r}")
    return found


def readers() -> list[SourceReader]:
    """Every registered format's reader, in registration order."""
    return [source_reader(fmt) for fmt in FORMATS]


def read_source(
    fmt: str,
    path: Path,
    *,
    with_labels: bool = True,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ParsedBatch:
    """Parse one dataset folder of the given format; labels are skipped when not wanted.

    A line longer than ``max_line_bytes`` is quarantined without being read whole.
    """
    read = source_reader(str(fmt)).read
    with gc_paused():
        return read(Path(path), with_labels=with_labels, max_line_bytes=max_line_bytes)


def parse_draft(body: Mapping[str, Any]) -> Draft:
    """A draft from its source format's fields (``{"format": ..., <block>: {...}, ...}``),
    by the format's own record models; a :class:`DraftError` says which field and why."""
    fmt = body.get("format")
    if not isinstance(fmt, str) or fmt not in READERS:
        raise DraftError(f"wrong type: format is {fmt!r}, expected one of {', '.join(FORMATS)}")
    return source_reader(fmt).parse_draft(body)
