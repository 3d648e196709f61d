"""What every source reader shares: the canonical columns, value parsers, quarantine, assembly.

A reader turns dataset files into :class:`PostDraft` / :class:`LabelDraft` objects and
quarantine rows; :func:`assemble_batch` deduplicates them and builds the :class:`ParsedBatch`
frames whose columns are the warehouse tables of docs/CONTRACTS.md (minus ``ingested_at``).
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

# Canonical columns and their DuckDB types, in table order. The warehouse builds its DDL from
# these, so a column is declared once.
POST_COLUMNS: dict[str, str] = {
    "post_id": "VARCHAR",
    "user_id": "VARCHAR",
    "posted_at": "TIMESTAMP",
    "title": "VARCHAR",
    "tags": "VARCHAR[]",
    "language": "VARCHAR",
    "location": "VARCHAR",
    "latitude": "DOUBLE",
    "longitude": "DOUBLE",
    "geo_accuracy": "DOUBLE",
    "category": "VARCHAR",
    "subcategory": "VARCHAR",
    "concept": "VARCHAR",
    "media_type": "VARCHAR",
    "media_path": "VARCHAR",
    "media_width": "DOUBLE",
    "media_height": "DOUBLE",
    "media_duration": "DOUBLE",
    "music_title": "VARCHAR",
    "music_duration": "DOUBLE",
    "caption": "VARCHAR",
    "source_format": "VARCHAR",
    "source_file": "VARCHAR",
    "content_hash": "VARCHAR",
}
AUTHOR_COLUMNS: dict[str, str] = {
    "post_id": "VARCHAR",
    "user_id": "VARCHAR",
    "follower_count": "BIGINT",
    "following_count": "BIGINT",
    "likes_count": "BIGINT",
    "post_count": "BIGINT",
    "digg_count": "BIGINT",
    "heart_count": "BIGINT",
    "friend_count": "BIGINT",
    "is_pro": "BOOLEAN",
    "first_post_at": "TIMESTAMP",
    "timezone_offset": "DOUBLE",
    "content_hash": "VARCHAR",
}
LABEL_COLUMNS: dict[str, str] = {"post_id": "VARCHAR", "popularity": "DOUBLE"}
QUARANTINE_COLUMNS: dict[str, str] = {
    "source_file": "VARCHAR",
    "line": "BIGINT",
    "post_id": "VARCHAR",
    "reason": "VARCHAR",
    "raw": "VARCHAR",
}

# Where the row came from is not content: the same post read from a copy of the file is unchanged.
_NOT_CONTENT = {"source_format", "source_file", "content_hash"}
POST_CONTENT_COLUMNS = tuple(c for c in POST_COLUMNS if c not in _NOT_CONTENT)
AUTHOR_CONTENT_COLUMNS = tuple(c for c in AUTHOR_COLUMNS if c not in _NOT_CONTENT)

_PANDAS_DTYPES = {
    "VARCHAR": "object",
    "VARCHAR[]": "object",
    "DOUBLE": "float64",
    "BIGINT": "Int64",
    "BOOLEAN": "boolean",
    "TIMESTAMP": "datetime64[us]",
}

# Quarantine reason kinds. A reason is "<kind>: <detail>"; summaries count by kind.
BAD_JSON = "bad JSON"
MISSING_ID = "missing id"
WRONG_TYPE = "wrong type"
BAD_TIME = "bad time"
MISSING_USER = "missing user"
CONFLICTING_DUPLICATE = "conflicting duplicate"
UNKNOWN_POST = "unknown post"
REASON_KINDS = (
    BAD_JSON,
    MISSING_ID,
    WRONG_TYPE,
    BAD_TIME,
    MISSING_USER,
    CONFLICTING_DUPLICATE,
    UNKNOWN_POST,
)

# Timestamps outside this window are typos or unit mistakes (milliseconds for seconds).
_EARLIEST = datetime(1990, 1, 1)
_LATEST = datetime(2100, 1, 1)


class SourceError(Exception):
    """The input cannot be read at all (no such directory, no posts file, unreadable file)."""


class BadValue(ValueError):
    """A field of one input row cannot be used; the row goes to quarantine with this reason."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self.detail}"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many short-lived acyclic objects.

    Reading 300k posts allocates millions of dicts that all stay alive until the frames are
    built; the collector's repeated full passes over them cost about a third of the time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def reason_kind(reason: str) -> str:
    """The kind of a quarantine reason ("bad JSON: Expecting value ..." -> "bad JSON")."""
    return reason.split(":", 1)[0]


@dataclass
class ParsedBatch:
    """One load's canonical rows; columns are the warehouse tables' minus ``ingested_at``."""

    posts: pd.DataFrame
    authors: pd.DataFrame
    labels: pd.DataFrame
    quarantine: pd.DataFrame


@dataclass
class PostDraft:
    """A parsed post (and its author as known for it), with where it was read from."""

    post: dict[str, Any]
    author: dict[str, Any] | None
    source_file: str
    line: int
    raw: object  # the text, or an object whose str() is: formatted only if quarantined


@dataclass
class LabelDraft:
    post_id: str
    popularity: float
    source_file: str
    line: int
    raw: str


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


# ---------------------------------------------------------------------------------------------
# Value parsers: missing -> None, usable -> canonical value, present but unusable -> BadValue.


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    # SMPD writes absent values as "", "None" or "nan" inside otherwise numeric columns.
    return isinstance(value, str) and value.strip().lower() in _MISSING_TEXTS


_MISSING_TEXTS = frozenset({"", "none", "null", "nan"})


def parse_id(value: Any, name: str) -> str:
    """An identifier as a string (ids can be ints in SMPD); missing -> ``missing id``."""
    if _is_missing(value):
        raise BadValue(MISSING_ID, f"no {name}")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadValue(WRONG_TYPE, f"{name} is {value!r}, expected a string or an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise BadValue(WRONG_TYPE, f"{name} is {value!r}, expected a string or an integer")
        value = int(value)
    return str(value).strip()


def parse_count(value: Any, name: str) -> int | None:
    """A non-negative count; negative or missing -> None (real data has both)."""
    if _is_missing(value):
        return None
    number: float | int
    if isinstance(value, bool):
        raise BadValue(WRONG_TYPE, f"{name} is {value!r}, expected a count")
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise BadValue(WRONG_TYPE, f"{name} is {value!r}, expected a count") from None
    else:
        raise BadValue(WRONG_TYPE, f"{name} is {value!r}, expected a count")
    if isinstance(number, float) and (math.isnan(number) or not number.is_integer()):
        raise BadValue(WRONG_TYPE, f"{name} is {value!r}, expected a whole number")
    count = int(number)
    return count if count >= 0 else None


def parse_float(value: Any, name: str) -> float | None:
    """A real number (numeric strings accepted, as SMPD writes them); missing -> None."""
    if _is_missing(value):
        return None
    if isinstance(value, bool):
        raise BadValue(WRONG_TYPE, f"{name} is {value!r}, expected a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise BadValue(WRONG_TYPE, f"{name} is {value!r}, expected a number") from None
    else:
        raise BadValue(WRONG_TYPE, f"{name} is {value!r}, expected a number")
    if math.isinf(number):
        raise BadValue(WRONG_TYPE, f"{name} is {value!r}, expected a finite number")
    return None if math.isnan(number) else number


def parse_text(value: Any, name: str) -> str | None:
    """Free text; empty text is valid and kept as ""."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise BadValue(WRONG_TYPE, f"{name} is {type(value).__name__}, expected text")


def parse_tags(value: Any, name: str) -> list[str] | None:
    """A list of words, from a JSON list or a space-separated string; empty is valid."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        if not all(
            isinstance(tag, str | int | float) and not isinstance(tag, bool) for tag in value
        ):
            raise BadValue(WRONG_TYPE, f"{name} holds non-text items, expected a list of words")
        return [str(tag) for tag in value]
    raise BadValue(WRONG_TYPE, f"{name} is {type(value).__name__}, expected a list of words")


def parse_bool(value: Any, name: str) -> bool | None:
    """A flag written as true/false, 0/1 or "0"/"1"; missing -> None."""
    if _is_missing(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    raise BadValue(WRONG_TYPE, f"{name} is {value!r}, expected 0/1 or true/false")


def parse_timestamp(value: Any, name: str, *, required: bool = True) -> datetime | None:
    """A UTC-naive timestamp from unix seconds (number or digits) or ISO-like text.

    Text without a zone is taken as UTC; text with a zone is converted to UTC.
    """
    if _is_missing(value):
        if required:
            raise BadValue(BAD_TIME, f"no {name}")
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
        raise BadValue(BAD_TIME, f"{name} is {value!r}, not a time") from None
    if not _EARLIEST <= moment < _LATEST:
        raise BadValue(BAD_TIME, f"{name} is {value!r} ({moment:%Y-%m-%d}), out of range")
    return moment


def _looks_numeric(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


def parse_utc_offset_hours(value: Any, name: str) -> float | None:
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
    raise BadValue(WRONG_TYPE, f"{name} is {value!r}, expected a UTC offset like +05:30")


# ---------------------------------------------------------------------------------------------
# Files


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


def iter_jsonl(path: Path, log: QuarantineLog) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(1-based line, raw text, object) per line; unparsable lines go to quarantine."""
    source = str(path)
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, text in enumerate(lines, start=1):
            raw = text.rstrip("\r\n")
            if not raw.strip():
                continue  # blank lines (a trailing newline, an editor's extra line) carry no row
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as error:
                log.add(
                    source, number, None, f"{BAD_JSON}: {error.msg} at column {error.colno}", raw
                )
                continue
            if not isinstance(record, dict):
                log.add(
                    source,
                    number,
                    None,
                    f"{BAD_JSON}: a {type(record).__name__}, expected an object",
                    raw,
                )
                continue
            yield number, raw, record


def raw_json(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False, default=str)


# ---------------------------------------------------------------------------------------------
# Hashing and assembly


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy arrays and scalars, as pandas hands them out
        return value.tolist()
    return str(value)


def content_hash(row: Mapping[str, Any], columns: Iterable[str]) -> str:
    """Stable 16-hex-digit SHA-1 of the row's content columns (same content, same hash)."""
    # NaN (a missing float in pandas) hashes as None, like a missing value from a parser.
    values = [None if (v := row.get(c)).__class__ is float and v != v else v for c in columns]
    payload = json.dumps(values, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]


def frame_from_records(records: list[dict[str, Any]], columns: Mapping[str, str]) -> pd.DataFrame:
    """A frame with exactly ``columns`` in order, typed as the warehouse column types."""
    # Typed per column, so an empty frame has the same dtypes as a full one.
    return pd.DataFrame(
        {
            name: pd.Series([r.get(name) for r in records], dtype=_PANDAS_DTYPES[sql_type])
            for name, sql_type in columns.items()
        }
    )


def assemble_batch(
    posts: Iterable[PostDraft], labels: Iterable[LabelDraft], log: QuarantineLog
) -> ParsedBatch:
    """Deduplicate drafts and build the frames.

    A post_id read twice with the same content is kept once, silently; with different content
    the first occurrence wins and each later one is quarantined (a load never picks a winner
    by guesswork, and the first is what an earlier, identical load kept). Labels likewise;
    a label whose post is not in the batch is quarantined.
    """
    kept: dict[str, tuple[str, PostDraft]] = {}
    for draft in posts:
        post_id = draft.post["post_id"]
        draft.post["content_hash"] = content_hash(draft.post, POST_CONTENT_COLUMNS)
        if draft.author is not None:
            draft.author["content_hash"] = content_hash(draft.author, AUTHOR_CONTENT_COLUMNS)
        fingerprint = draft.post["content_hash"] + (
            draft.author["content_hash"] if draft.author else ""
        )
        if post_id not in kept:
            kept[post_id] = (fingerprint, draft)
            continue
        first_fingerprint, first = kept[post_id]
        if fingerprint != first_fingerprint:
            log.add(
                draft.source_file,
                draft.line,
                post_id,
                f"{CONFLICTING_DUPLICATE}: post {post_id} was already read from "
                f"{Path(first.source_file).name} line {first.line} with other content; "
                "the first is kept",
                str(draft.raw),
            )

    labelled: dict[str, LabelDraft] = {}
    for label in labels:
        if label.post_id not in kept:
            why = (
                "its post was quarantined"
                if label.post_id in log.post_ids
                else "no such post in this load"
            )
            log.add(
                label.source_file,
                label.line,
                label.post_id,
                f"{UNKNOWN_POST}: label for {label.post_id}, {why}",
                label.raw,
            )
        elif label.post_id not in labelled:
            labelled[label.post_id] = label
        elif labelled[label.post_id].popularity != label.popularity:
            first_label = labelled[label.post_id]
            log.add(
                label.source_file,
                label.line,
                label.post_id,
                f"{CONFLICTING_DUPLICATE}: label for {label.post_id} was already read from "
                f"{Path(first_label.source_file).name} line {first_label.line} with "
                f"popularity {first_label.popularity}; the first is kept",
                label.raw,
            )

    drafts = [draft for _, draft in kept.values()]
    return ParsedBatch(
        posts=frame_from_records([d.post for d in drafts], POST_COLUMNS),
        authors=frame_from_records(
            [d.author for d in drafts if d.author is not None], AUTHOR_COLUMNS
        ),
        labels=frame_from_records(
            [{"post_id": lab.post_id, "popularity": lab.popularity} for lab in labelled.values()],
            LABEL_COLUMNS,
        ),
        quarantine=frame_from_records(log.rows, QUARANTINE_COLUMNS),
    )


class MediaResolver:
    """Makes media paths absolute when the file exists under one of the dataset roots.

    Paths stay as given otherwise (docs/CONTRACTS.md). Folders are checked once each, so a
    dataset without its media costs one stat per folder rather than per post.
    """

    def __init__(self, roots: Iterable[Path]) -> None:
        self._roots = [str(root) for root in roots]
        self._roots_with_folder: dict[str, list[str]] = {}  # relative folder -> roots having it

    def __call__(self, given: str | None) -> str | None:
        if given is None or not given.strip():
            return given
        folder = os.path.dirname(given)
        roots = self._roots_with_folder.get(folder)
        if roots is None:
            roots = [r for r in self._roots if os.path.isdir(os.path.join(r, folder))]
            self._roots_with_folder[folder] = roots
        for root in roots:
            candidate = os.path.join(root, given)
            if os.path.isfile(candidate):
                return os.path.realpath(candidate)
        return given
