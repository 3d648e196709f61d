"""Reading dataset files as untrusted input: folders, lines, JSON documents.

Lines end at ``\\n`` only (a form feed or U+2028 inside a title or a path is part of its line);
a UTF-8 byte-order mark is dropped; bytes that are not UTF-8 are never replaced silently: the
line (or, in a JSON document, the record) holding them is reported; a line longer than the cap
is reported without being read into memory whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smp_platform.sources.quarantine import (
    BAD_JSON,
    LINE_TOO_LONG,
    NOT_UTF8,
    QuarantineLog,
    SourceError,
)

# The longest SMP-Video row of the bundled sample is about 2 kB; a 1 MiB line is not a post.
MAX_LINE_BYTES = 1 << 20
_BOM = b"\xef\xbb\xbf"
_PREVIEW_CHARS = 200
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a non-UTF-8 byte


def find_input_dirs(path: Path, pattern: str, what: str) -> list[Path]:
    """The directory itself if it holds files matching ``pattern``, else its sub-folders that do."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(f"{path} does not exist: pass the folder that holds the {what} files")
    if not path.is_dir():
        raise SourceError(f"{path} is a file: pass the folder that holds the {what} files")
    if any(path.glob(pattern)):
        return [path.resolve()]
    subdirs = sorted(d.resolve() for d in path.iterdir() if d.is_dir() and any(d.glob(pattern)))
    if not subdirs:
        raise SourceError(
            f"no {pattern} file in {path} or its sub-folders: is this a {what} dataset? "
            f"Pass the folder that holds the {what} files (or choose the other format)"
        )
    return subdirs


@dataclass(frozen=True)
class Line:
    """One line of a text file: its text, or why it cannot be used (and what it looked like)."""

    number: int  # 1-based
    text: str | None
    problem: str | None = None  # a quarantine reason when text is None
    raw: str = ""

    @property
    def is_blank(self) -> bool:
        return self.text is not None and not self.text.strip()


def _shown(data: bytes) -> str:
    """Bytes as text for the quarantine's raw column: undecodable bytes as \\xNN escapes."""
    return data.decode("utf-8", errors="backslashreplace")


def iter_lines(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """Every line of ``path`` split on ``\\n`` alone, decoded strictly as UTF-8."""
    with path.open("rb") as handle:  # binary: text mode would also split on a lone \r
        number = 0
        while True:
            data = handle.readline(max_line_bytes + 1)
            if not data:
                return
            number += 1
            if number == 1:
                data = data.removeprefix(_BOM)
            if len(data) > max_line_bytes and not data.endswith(b"\n"):
                size = len(data)
                while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                    size += len(rest)
                size += len(rest)
                yield Line(
                    number,
                    None,
                    f"{LINE_TOO_LONG}: {size:,} bytes, more than the limit of "
                    f"{max_line_bytes:,}; a row of this size is not a post",
                    _shown(data[: _PREVIEW_CHARS * 4])[:_PREVIEW_CHARS] + "...",
                )
                continue
            data = data.removesuffix(b"\n").removesuffix(b"\r")
            try:
                yield Line(number, data.decode("utf-8"))
            except UnicodeDecodeError as error:
                yield Line(
                    number,
                    None,
                    f"{NOT_UTF8}: byte 0x{data[error.start]:02x} at byte {error.start + 1} "
                    "cannot be decoded; re-export the file as UTF-8",
                    _shown(data),
                )


def read_positional_lines(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> list[Line]:
    """Lines of a line-per-post file, in order; trailing blank lines are not posts."""
    lines = list(iter_lines(path, max_line_bytes))
    while lines and lines[-1].is_blank:
        lines.pop()
    return lines


def iter_jsonl(
    path: Path, log: QuarantineLog, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(1-based line, raw text, object) per line; unusable lines go to quarantine."""
    source = str(path)
    for line in iter_lines(path, max_line_bytes):
        if line.text is None:
            log.add(source, line.number, None, line.problem or NOT_UTF8, line.raw)
            continue
        if not line.text.strip():
            continue  # blank lines (a trailing newline, an editor's extra line) carry no row
        try:
            record = json.loads(line.text)
        except json.JSONDecodeError as error:
            log.add(
                source,
                line.number,
                None,
                f"{BAD_JSON}: {error.msg} at column {error.colno}",
                line.text,
            )
            continue
        if not isinstance(record, dict):
            log.add(
                source,
                line.number,
                None,
                f"{BAD_JSON}: a {type(record).__name__}, expected an object",
                line.text,
            )
            continue
        yield line.number, line.text, record


@dataclass(frozen=True)
class JsonDocument:
    """A whole-file JSON document; ``clean`` is False when some bytes were not UTF-8."""

    value: Any
    clean: bool


def load_json(path: Path) -> JsonDocument:
    """Parse a whole-file JSON document (BOM dropped).

    Bytes that are not UTF-8 are kept as lone surrogates (``surrogateescape``) so the document
    still parses and the records holding them can be reported one by one
    (:func:`undecodable_reason`) instead of being rewritten.
    """
    data = path.read_bytes().removeprefix(_BOM)
    try:
        text, clean = data.decode("utf-8"), True
    except UnicodeDecodeError:
        text, clean = data.decode("utf-8", errors="surrogateescape"), False
    try:
        return JsonDocument(json.loads(text), clean)
    except json.JSONDecodeError as error:
        raise SourceError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column "
            f"{error.colno}): the whole file is one document, so fix or re-export it"
        ) from None


def undecodable_reason(value: Any) -> str | None:
    """A ``not UTF-8`` reason when a value read by :func:`load_json` held non-UTF-8 bytes."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    found = _UNDECODABLE.search(text)
    if found is None:
        return None
    return (
        f"{NOT_UTF8}: byte 0x{ord(found.group()) - 0xDC00:02x} cannot be decoded; "
        "re-export the file as UTF-8"
    )


def raw_json(record: Any) -> str:
    """A record as the quarantine's raw text (non-UTF-8 bytes shown as \\xNN escapes)."""
    text = json.dumps(record, ensure_ascii=False, default=str)
    if _UNDECODABLE.search(text):
        return _shown(text.encode("utf-8", errors="surrogateescape"))
    return text
