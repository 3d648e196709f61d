"""SMPD (SMP Challenge, Flickr): JSON arrays per aspect, plus line-per-post text files.

One input is a set of files sharing a prefix (``train_text.json``, ``train_category.json``, ...)
in one folder; several prefixes or sub-folders are read as one load.

- ``<p>_text.json`` (Uid, Pid, Title, Mediatype, Alltags) defines the posts and their order.
- ``<p>_temporalspatial_information.json`` (Postdate unix s, Latitude, Longitude, Geoaccuracy)
  and ``<p>_category.json`` (Category, Subcategory, Concept) are joined by Pid.
- ``<p>_user_data.json`` is column-oriented (a dict of equal-length lists); row i belongs to
  post i of the text file, as in the challenge release (or to its ``Pid`` when it has one).
- ``<p>_img_filepath.txt`` and ``<p>_label.txt`` have one line per post, in text-file order.
- ``<p>_additional_information.json`` (Pathalias, Ispublic, Mediastatus) has no warehouse
  column and is not read.

For JSON arrays the quarantine ``line`` is the 1-based position of the record in the array.
Latitude and longitude both 0 is Flickr's "not geotagged" and is stored as NULL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smp_platform.sources.common import (
    BAD_JSON,
    BAD_TIME,
    CONFLICTING_DUPLICATE,
    UNKNOWN_POST,
    WRONG_TYPE,
    BadValue,
    LabelDraft,
    MediaResolver,
    ParsedBatch,
    PostDraft,
    QuarantineLog,
    SourceError,
    assemble_batch,
    find_input_dirs,
    parse_bool,
    parse_count,
    parse_float,
    parse_id,
    parse_tags,
    parse_text,
    parse_timestamp,
    parse_utc_offset_hours,
    raw_json,
)

FORMAT = "smpd"
TEXT_SUFFIX = "_text.json"
TEMPORAL_SUFFIX = "_temporalspatial_information.json"
CATEGORY_SUFFIX = "_category.json"
USER_SUFFIX = "_user_data.json"
IMAGE_SUFFIX = "_img_filepath.txt"
LABEL_SUFFIX = "_label.txt"


def read_smpd(path: Path, *, with_labels: bool = True) -> ParsedBatch:
    """Read an SMPD folder (or a folder of them) into canonical rows plus quarantine."""
    log = QuarantineLog()
    posts: list[PostDraft] = []
    labels: list[LabelDraft] = []
    for folder in find_input_dirs(path, f"*{TEXT_SUFFIX}", "SMPD"):
        for text_file in sorted(folder.glob(f"*{TEXT_SUFFIX}")):
            prefix = text_file.name[: -len(TEXT_SUFFIX)]
            part_posts, part_labels = _read_part(folder, prefix, log, with_labels=with_labels)
            posts += part_posts
            labels += part_labels
    return assemble_batch(posts, labels, log)


@dataclass
class _Rejected(Exception):
    """A post cannot be loaded because of a value in one of its files."""

    source: str
    line: int
    record: _Record
    bad: BadValue


@dataclass
class _Record:
    """One record of a JSON array (or one row of the user data) and its 1-based position."""

    line: int
    values: dict[str, Any]

    @property
    def raw(self) -> str:
        return raw_json(self.values)

    def __str__(self) -> str:  # PostDraft formats raw text only when it is quarantined
        return self.raw


def _load_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise SourceError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column "
            f"{error.colno}): the whole file is one document, so fix or re-export it"
        ) from None


def _load_records(path: Path, log: QuarantineLog) -> list[_Record | None]:
    """The array's records in order; a non-object entry is quarantined and left as None."""
    document = _load_json(path)
    if not isinstance(document, list):
        raise SourceError(
            f"{path} holds a JSON {type(document).__name__}, expected an array of records "
            "(one per post, as in the SMPD release)"
        )
    records: list[_Record | None] = []
    for index, record in enumerate(document, start=1):
        if isinstance(record, dict):
            records.append(_Record(index, record))
        else:
            log.add(
                str(path),
                index,
                None,
                f"{BAD_JSON}: a {type(record).__name__}, expected an object",
                raw_json(record),
            )
            records.append(None)
    return records


def _index_by_pid(path: Path, log: QuarantineLog) -> dict[str, _Record]:
    """Pid -> record; a later record with other values for the same Pid is quarantined."""
    by_pid: dict[str, _Record] = {}
    for record in _load_records(path, log):
        if record is None:
            continue
        try:
            post_id = parse_id(record.values.get("Pid"), "Pid")
        except BadValue as bad:
            log.add(str(path), record.line, None, bad.reason, record.raw)
            continue
        first = by_pid.get(post_id)
        if first is None:
            by_pid[post_id] = record
        elif first.values != record.values:
            log.add(
                str(path),
                record.line,
                post_id,
                f"{CONFLICTING_DUPLICATE}: Pid {post_id} already at record {first.line} "
                "with other values; the first is kept",
                record.raw,
            )
    return by_pid


def _read_lines(path: Path) -> list[str]:
    """Lines of a line-per-post file; trailing blank lines are not posts."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


class _UserColumns:
    """Column-oriented user data, read row by row without building every row up front."""

    def __init__(self, columns: dict[str, list[Any]]) -> None:
        self._columns = columns
        self.n_rows = max((len(values) for values in columns.values()), default=0)

    def __len__(self) -> int:
        return self.n_rows

    def row(self, index: int) -> dict[str, Any]:
        return {
            name: values[index] if index < len(values) else None
            for name, values in self._columns.items()
        }

    def pid_index(self) -> dict[str, int] | None:
        """Pid -> row when the data names its posts (first row wins); None when positional."""
        if "Pid" not in self._columns:
            return None
        by_pid: dict[str, int] = {}
        for index, value in enumerate(self._columns["Pid"]):
            try:
                by_pid.setdefault(parse_id(value, "Pid"), index)
            except BadValue:
                continue  # reported as a row without a post
        return by_pid


def _load_user_columns(path: Path | None) -> _UserColumns:
    if path is None:
        return _UserColumns({})
    document = _load_json(path)
    if not isinstance(document, dict) or not document:
        raise SourceError(
            f"{path} is not column-oriented user data: expected a JSON object of equal-length "
            "lists (photo_count, ispro, ...), one entry per post"
        )
    columns: dict[str, list[Any]] = {}
    for name, values in document.items():
        if isinstance(values, dict):  # pandas' to_json(orient="columns"): {"0": v, "1": v}
            try:
                values = [v for _, v in sorted(values.items(), key=lambda kv: int(kv[0]))]
            except ValueError:
                raise SourceError(
                    f"{path}: column {name} is keyed by {next(iter(values))!r}, "
                    "expected row numbers"
                ) from None
        if not isinstance(values, list):
            raise SourceError(
                f"{path}: column {name} is a {type(values).__name__}, "
                "expected a list with one value per post"
            )
        columns[name] = values
    return _UserColumns(columns)


def _require(folder: Path, prefix: str, suffix: str) -> Path:
    path = folder / f"{prefix}{suffix}"
    if not path.is_file():
        raise SourceError(
            f"{path.name} is missing from {folder}: every SMPD part needs its "
            f"{prefix}{TEXT_SUFFIX} and {prefix}{TEMPORAL_SUFFIX}"
        )
    return path


def _optional(folder: Path, prefix: str, suffix: str) -> Path | None:
    path = folder / f"{prefix}{suffix}"
    return path if path.is_file() else None


def _read_part(
    folder: Path, prefix: str, log: QuarantineLog, *, with_labels: bool
) -> tuple[list[PostDraft], list[LabelDraft]]:
    text_file = _require(folder, prefix, TEXT_SUFFIX)
    temporal_file = _require(folder, prefix, TEMPORAL_SUFFIX)
    texts = _load_records(text_file, log)
    temporal = _index_by_pid(temporal_file, log)
    category_file = _optional(folder, prefix, CATEGORY_SUFFIX)
    categories = _index_by_pid(category_file, log) if category_file else {}
    user_file = _optional(folder, prefix, USER_SUFFIX)
    user_rows = _load_user_columns(user_file)
    # With a Pid column the user rows say whose they are; without, row i is post i.
    user_by_pid = user_rows.pid_index()
    image_file = _optional(folder, prefix, IMAGE_SUFFIX)
    image_paths = _read_lines(image_file) if image_file else []
    label_file = _optional(folder, prefix, LABEL_SUFFIX) if with_labels else None
    label_lines = _read_lines(label_file) if label_file else []
    resolve_media = MediaResolver((folder, folder.parent))

    posts: list[PostDraft] = []
    labels: list[LabelDraft] = []
    text_source = str(text_file)
    pid_at: list[str | None] = []  # the post id of each position, for the label lines
    for index, record in enumerate(texts):
        pid_at.append(None)
        if record is None:
            continue
        post_id: str | None = None
        try:
            try:
                post_id = pid_at[index] = parse_id(record.values.get("Pid"), "Pid")
                user_id = parse_id(record.values.get("Uid"), "Uid")
                post: dict[str, Any] = {
                    "post_id": post_id,
                    "user_id": user_id,
                    "title": parse_text(record.values.get("Title"), "Title"),
                    "tags": parse_tags(record.values.get("Alltags"), "Alltags"),
                    "media_type": parse_text(record.values.get("Mediatype"), "Mediatype"),
                    "source_format": FORMAT,
                    "source_file": text_source,
                }
                if index < len(image_paths):
                    post["media_path"] = resolve_media(image_paths[index].strip())
            except BadValue as bad:
                raise _Rejected(text_source, record.line, record, bad) from None
            time_record = temporal.get(post_id)
            if time_record is None:
                raise _Rejected(
                    text_source,
                    record.line,
                    record,
                    BadValue(BAD_TIME, f"no record for Pid {post_id} in {temporal_file.name}"),
                )
            post.update(_fields(temporal_file, time_record, _time_and_place))
            category = categories.get(post_id)
            if category is not None:
                post.update(_fields(category_file, category, _category))  # type: ignore[arg-type]
            user_row, user_line = _user_row(user_rows, user_by_pid, post_id, index)
            author: dict[str, Any] = {"post_id": post_id, "user_id": user_id}
            if user_row is not None:
                user_record = _Record(user_line, user_row)
                author.update(_fields(user_file, user_record, _author))  # type: ignore[arg-type]
        except _Rejected as rejected:
            log.reject_post(
                rejected.source, rejected.line, post_id, rejected.bad.reason, rejected.record.raw
            )
            continue
        posts.append(PostDraft(post, author, text_source, record.line, record))

    # Labels of rejected posts are kept as drafts: assembly quarantines them as unknown posts.
    if label_file is not None:
        for index, text in enumerate(label_lines[: len(texts)]):
            label = _label(label_file, index + 1, text, pid_at[index], log)
            if label is not None:
                labels.append(label)

    _quarantine_leftovers(
        pid_at,
        temporal,
        categories,
        user_rows,
        user_by_pid,
        image_paths,
        label_lines,
        text_file,
        temporal_file,
        category_file,
        user_file,
        image_file,
        label_file,
        log,
    )
    return posts, labels


def _fields(path: Path, record: _Record, parse: Any) -> dict[str, Any]:
    try:
        return parse(record.values)  # type: ignore[no-any-return]
    except BadValue as bad:
        raise _Rejected(str(path), record.line, record, bad) from None


def _time_and_place(values: dict[str, Any]) -> dict[str, Any]:
    latitude = parse_float(values.get("Latitude"), "Latitude")
    longitude = parse_float(values.get("Longitude"), "Longitude")
    if latitude == 0 and longitude == 0:
        latitude = longitude = None
    return {
        "posted_at": parse_timestamp(values.get("Postdate"), "Postdate"),
        "latitude": latitude,
        "longitude": longitude,
        "geo_accuracy": parse_float(values.get("Geoaccuracy"), "Geoaccuracy"),
    }


def _category(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "category": parse_text(values.get("Category"), "Category"),
        "subcategory": parse_text(values.get("Subcategory"), "Subcategory"),
        "concept": parse_text(values.get("Concept"), "Concept"),
    }


def _author(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "post_count": parse_count(values.get("photo_count"), "photo_count"),
        "is_pro": parse_bool(values.get("ispro"), "ispro"),
        "first_post_at": parse_timestamp(
            values.get("photo_firstdate"), "photo_firstdate", required=False
        ),
        "timezone_offset": parse_utc_offset_hours(values.get("timezone_offset"), "timezone_offset"),
    }


def _user_row(
    rows: _UserColumns, by_pid: dict[str, int] | None, post_id: str, index: int
) -> tuple[dict[str, Any] | None, int]:
    if by_pid is not None:
        index = by_pid.get(post_id, len(rows))
    return (rows.row(index), index + 1) if index < len(rows) else (None, 0)


def _label(
    path: Path, line: int, text: str, post_id: str | None, log: QuarantineLog
) -> LabelDraft | None:
    if post_id is None:
        log.add(
            str(path),
            line,
            None,
            f"{UNKNOWN_POST}: the post at position {line} has no usable Pid",
            text,
        )
        return None
    try:
        popularity = parse_float(text.strip(), "label")
        if popularity is None:
            raise BadValue(WRONG_TYPE, "label is empty")
    except BadValue as bad:
        log.add(str(path), line, post_id, bad.reason, text)
        return None
    return LabelDraft(post_id, popularity, str(path), line, text)


def _quarantine_leftovers(
    pid_at: list[str | None],
    temporal: dict[str, _Record],
    categories: dict[str, _Record],
    user_rows: _UserColumns,
    user_by_pid: dict[str, int] | None,
    image_paths: list[str],
    label_lines: list[str],
    text_file: Path,
    temporal_file: Path,
    category_file: Path | None,
    user_file: Path | None,
    image_file: Path | None,
    label_file: Path | None,
    log: QuarantineLog,
) -> None:
    """Rows of the side files that belong to no post of the text file: reported, not lost."""
    text_pids = {post_id for post_id in pid_at if post_id is not None}
    for path, by_pid in ((temporal_file, temporal), (category_file, categories)):
        for post_id, record in by_pid.items():
            if post_id not in text_pids and path is not None:
                log.add(
                    str(path),
                    record.line,
                    post_id,
                    f"{UNKNOWN_POST}: Pid {post_id} is not in {text_file.name}",
                    record.raw,
                )
    n_posts = len(pid_at)
    if user_file is not None:
        if user_by_pid is None:
            leftover = range(n_posts, len(user_rows))
        else:
            owned = {i for pid, i in user_by_pid.items() if pid in text_pids}
            leftover = range(len(user_rows))
            leftover = [i for i in leftover if i not in owned]  # type: ignore[assignment]
        for i in leftover:
            log.add(
                str(user_file),
                i + 1,
                None,
                f"{UNKNOWN_POST}: user row {i + 1} has no post in {text_file.name} "
                f"({n_posts} posts)",
                raw_json(user_rows.row(i)),
            )
    for path, lines in ((image_file, image_paths), (label_file, label_lines)):
        if path is None:
            continue
        for i in range(n_posts, len(lines)):
            log.add(
                str(path),
                i + 1,
                None,
                f"{UNKNOWN_POST}: line {i + 1} has no post in {text_file.name} ({n_posts} posts)",
                lines[i],
            )
