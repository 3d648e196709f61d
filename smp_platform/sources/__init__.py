"""Dataset readers: SMP-Video and SMPD files -> canonical warehouse rows plus quarantine.

``read_source`` never drops input silently: rows it cannot use come back in
``ParsedBatch.quarantine`` with the file, the 1-based line, the post id when known, a reason
("<kind>: <detail>", kinds in ``REASON_KINDS``) and the raw text. Input it cannot read at all
raises :class:`SourceError`.

Modules: ``smp_video`` and ``smpd`` (one reader and its record models per format), ``fields``
(the typed values records are made of), ``files`` (lines and JSON documents read as untrusted
input), ``media`` (media paths confined to the dataset), ``quarantine`` (reasons and their
log), ``assembly`` (content hashes, deduplication, the batch). The tables they fill, and their
schema, are :mod:`smp_platform.infra.warehouse`'s.
"""

from __future__ import annotations

from pathlib import Path

from smp_platform.core.formats import SourceFormat
from smp_platform.infra.warehouse import (
    AUTHOR_COLUMNS,
    LABEL_COLUMNS,
    POST_COLUMNS,
    QUARANTINE_COLUMNS,
    ParsedBatch,
    reason_kind,
)
from smp_platform.sources.assembly import content_hash, gc_paused
from smp_platform.sources.files import MAX_LINE_BYTES
from smp_platform.sources.quarantine import REASON_KINDS, SourceError

FORMATS: tuple[str, ...] = tuple(f.value for f in SourceFormat)

__all__ = [
    "AUTHOR_COLUMNS",
    "FORMATS",
    "LABEL_COLUMNS",
    "MAX_LINE_BYTES",
    "POST_COLUMNS",
    "QUARANTINE_COLUMNS",
    "REASON_KINDS",
    "ParsedBatch",
    "SourceError",
    "SourceFormat",
    "content_hash",
    "read_source",
    "reason_kind",
]


def _format(fmt: SourceFormat | str) -> SourceFormat:
    try:
        return SourceFormat(fmt)
    except ValueError:
        raise SourceError(
            f"unknown source format {fmt!r}: choose one of {', '.join(FORMATS)}"
        ) from None


def read_source(
    fmt: SourceFormat | str,
    path: Path,
    *,
    with_labels: bool = True,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ParsedBatch:
    """Parse one dataset folder of the given format; labels are skipped when not wanted.

    A line longer than ``max_line_bytes`` is quarantined without being read whole.
    """
    # Imported here so that reading one format does not import the other's parser.
    fmt = _format(fmt)
    if fmt is SourceFormat.SMP_VIDEO:
        from smp_platform.sources.smp_video import read_smp_video

        with gc_paused():
            return read_smp_video(
                Path(path), with_labels=with_labels, max_line_bytes=max_line_bytes
            )
    if fmt is SourceFormat.SMPD:
        from smp_platform.sources.smpd import read_smpd

        with gc_paused():
            return read_smpd(Path(path), with_labels=with_labels, max_line_bytes=max_line_bytes)
    raise AssertionError(fmt)  # _format admits only the members above
