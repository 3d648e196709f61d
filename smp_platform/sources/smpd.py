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

Line-per-post files are split on ``\n`` only: a form feed or U+2028 inside a path or a label
line stays in its line, so every later line stays on its own post.
For JSON arrays the quarantine ``line`` is the 1-based position of the record in the array.
Latitude and longitude both 0 is Flickr's "not geotagged" and is stored as NULL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from smp_platform.core.tables import ParsedBatch
from smp_platform.sources.assembly import LabelDraft, PostDraft, assemble_batch
from smp_platform.sources.draft import (
    DRAFT_POST_ID,
    Draft,
    DraftBlock,
    SourceReader,
    block,
    validated,
)
from smp_platform.sources.fields import (
    Count,
    Flag,
    Id,
    OptionalTime,
    Real,
    SourceRecord,
    Tags,
    Text,
    Time,
    UtcOffset,
    absent,
    parse_id,
    parse_score,
)
from smp_platform.sources.files import (
    MAX_LINE_BYTES,
    Line,
    find_input_dirs,
    load_json,
    raw_json,
    read_positional_lines,
    undecodable_reason,
)
from smp_platform.sources.media import MediaResolver
from smp_platform.sources.quarantine import (
    BAD_JSON,
    BAD_TIME,
    CONFLICTING_DUPLICATE,
    UNKNOWN_POST,
    BadValue,
    QuarantineLog,
    SourceError,
    reason_of,
)

FORMAT = "smpd"
TEXT_SUFFIX = "_text.json"
TEMPORAL_SUFFIX = "_temporalspatial_information.json"
CATEGORY_SUFFIX = "_category.json"
USER_SUFFIX = "_user_data.json"
IMAGE_SUFFIX = "_img_filepath.txt"
LABEL_SUFFIX = "_label.txt"


# -- record models: one per file kind, fields in the order a record is checked -----------------


class TextRecord(SourceRecord):
    """A record of ``<p>_text.json``: it defines a post and its position."""

    Pid: Id = absent()
    Uid: Id = absent()
    Title: Text = absent()
    Alltags: Tags = absent()
    Mediatype: Text = absent()

    def columns(self, source: str) -> dict[str, Any]:
        """The post's columns this record gives (the ingest and a draft both use it)."""
        return {
            "post_id": self.Pid,
            "user_id": self.Uid,
            "title": self.Title,
            "tags": self.Alltags,
            "media_type": self.Mediatype,
            "source_format": FORMAT,
            "source_file": source,
        }


class TemporalRecord(SourceRecord):
    """A record of ``<p>_temporalspatial_information.json``."""

    Latitude: Real = absent()
    Longitude: Real = absent()
    Postdate: Time = absent()
    Geoaccuracy: Real = absent()

    def columns(self) -> dict[str, Any]:
        latitude, longitude = self.Latitude, self.Longitude
        if latitude == 0 and longitude == 0:  # Flickr's "not geotagged"
            latitude = longitude = None
        return {
            "posted_at": self.Postdate,
            "latitude": latitude,
            "longitude": longitude,
            "geo_accuracy": self.Geoaccuracy,
        }


class CategoryRecord(SourceRecord):
    """A record of ``<p>_category.json``."""

    Category: Text = absent()
    Subcategory: Text = absent()
    Concept: Text = absent()

    def columns(self) -> dict[str, Any]:
        return {
            "category": self.Category,
            "subcategory": self.Subcategory,
            "concept": self.Concept,
        }


class UserRow(SourceRecord):
    """A row of the column-oriented ``<p>_user_data.json``."""

    photo_count: Count = absent()
    ispro: Flag = absent()
    photo_firstdate: OptionalTime = absent()
    timezone_offset: UtcOffset = absent()

    def columns(self) -> dict[str, Any]:
        return {
            "post_count": self.photo_count,
            "is_pro": self.ispro,
            "first_post_at": self.photo_firstdate,
            "timezone_offset": self.timezone_offset,
        }


# -- reading -----------------------------------------------------------------------------------


def read_smpd(
    path: Path, *, with_labels: bool = True, max_line_bytes: int = MAX_LINE_BYTES
) -> ParsedBatch:
    """Read an SMPD folder (or a folder of them) into canonical rows plus quarantine."""
    log = QuarantineLog()
    posts: list[PostDraft] = []
    labels: list[LabelDraft] = []
    for folder in find_input_dirs(path, f"*{TEXT_SUFFIX}", "SMPD"):
        for text_file in sorted(folder.glob(f"*{TEXT_SUFFIX}")):
            prefix = text_file.name[: -len(TEXT_SUFFIX)]
            part = _Part(
                folder, prefix, log, with_labels=with_labels, max_line_bytes=max_line_bytes
            )
            part_posts, part_labels = part.read()
            posts += part_posts
            labels += part_labels
    return assemble_batch(posts, labels, log)


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


@dataclass
class _Rejected(Exception):
    """A post cannot be loaded because of a record in one of its files."""

    source: Path
    record: _Record
    reason: str


@dataclass
class _JsonRecords:
    """A JSON array file's records in order (None where an entry was not an object)."""

    path: Path
    records: list[_Record | None]
    clean: bool  # False: some bytes were not UTF-8, so records are checked one by one


class _UserColumns:
    """Column-oriented user data, read row by row without building every row up front."""

    def __init__(self, path: Path | None, columns: dict[str, list[Any]], clean: bool) -> None:
        self.path, self._columns, self.clean = path, columns, clean
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
                by_pid.setdefault(parse_id(value), index)
            except PydanticCustomError:
                continue  # reported as a row without a post
        return by_pid


_Model = TypeVar("_Model", bound=SourceRecord)


def _checked(path: Path, record: _Record, model: type[_Model], clean: bool) -> _Model:
    """The record validated by its model; a bad value rejects the post it belongs to."""
    if not clean and (why := undecodable_reason(record.values)):
        raise _Rejected(path, record, why)
    try:
        return model.model_validate(record.values)
    except ValidationError as error:
        raise _Rejected(path, record, reason_of(error)) from None


class _Part:
    """One SMPD part: the files sharing a prefix in one folder, joined into posts.

    The text file defines the posts and their positions; the other files are joined by Pid
    or by position, and whatever in them belongs to no post is reported, not lost.
    """

    def __init__(
        self,
        folder: Path,
        prefix: str,
        log: QuarantineLog,
        *,
        with_labels: bool,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.log = log
        self.text = self._load_records(self._require(folder, prefix, TEXT_SUFFIX))
        self.temporal_file = self._require(folder, prefix, TEMPORAL_SUFFIX)
        temporal = self._load_records(self.temporal_file)
        self.temporal, self.temporal_clean = self._index_by_pid(temporal), temporal.clean
        self.category_file = self._optional(folder, prefix, CATEGORY_SUFFIX)
        self.categories: dict[str, _Record] = {}
        self.categories_clean = True
        if self.category_file is not None:
            categories = self._load_records(self.category_file)
            self.categories, self.categories_clean = (
                self._index_by_pid(categories),
                categories.clean,
            )
        self.users = self._load_user_columns(self._optional(folder, prefix, USER_SUFFIX))
        # With a Pid column the user rows say whose they are; without, row i is post i.
        self.user_by_pid = self.users.pid_index()
        self.image_file = self._optional(folder, prefix, IMAGE_SUFFIX)
        self.image_lines = (
            read_positional_lines(self.image_file, max_line_bytes) if self.image_file else []
        )
        self.label_file = self._optional(folder, prefix, LABEL_SUFFIX) if with_labels else None
        self.label_lines = (
            read_positional_lines(self.label_file, max_line_bytes) if self.label_file else []
        )
        self.resolve_media = MediaResolver((folder, folder.parent))
        self.pid_at: list[str | None] = []  # the post id of each position, for the label lines

    # -- files ---------------------------------------------------------------------------------

    @staticmethod
    def _require(folder: Path, prefix: str, suffix: str) -> Path:
        path = folder / f"{prefix}{suffix}"
        if not path.is_file():
            raise SourceError(
                f"{path.name} is missing from {folder}: every SMPD part needs its "
                f"{prefix}{TEXT_SUFFIX} and {prefix}{TEMPORAL_SUFFIX}"
            )
        return path

    @staticmethod
    def _optional(folder: Path, prefix: str, suffix: str) -> Path | None:
        path = folder / f"{prefix}{suffix}"
        return path if path.is_file() else None

    def _load_records(self, path: Path) -> _JsonRecords:
        """The array's records in order; a non-object entry is quarantined and left as None."""
        document = load_json(path)
        if not isinstance(document.value, list):
            raise SourceError(
                f"{path} holds a JSON {type(document.value).__name__}, expected an array of "
                "records (one per post, as in the SMPD release)"
            )
        records: list[_Record | None] = []
        for index, record in enumerate(document.value, start=1):
            if isinstance(record, dict):
                records.append(_Record(index, record))
            else:
                self.log.add(
                    str(path),
                    index,
                    None,
                    f"{BAD_JSON}: a {type(record).__name__}, expected an object",
                    raw_json(record),
                )
                records.append(None)
        return _JsonRecords(path, records, document.clean)

    def _index_by_pid(self, loaded: _JsonRecords) -> dict[str, _Record]:
        """Pid -> record; a later record with other values for the same Pid is quarantined."""
        by_pid: dict[str, _Record] = {}
        for record in loaded.records:
            if record is None:
                continue
            try:
                post_id = parse_id(record.values.get("Pid"))
            except PydanticCustomError as error:
                self.log.add(
                    str(loaded.path), record.line, None, reason_of(error, "Pid"), record.raw
                )
                continue
            first = by_pid.get(post_id)
            if first is None:
                by_pid[post_id] = record
            elif first.values != record.values:
                self.log.add(
                    str(loaded.path),
                    record.line,
                    post_id,
                    f"{CONFLICTING_DUPLICATE}: Pid {post_id} already at record {first.line} "
                    "with other values; the first is kept",
                    record.raw,
                )
        return by_pid

    def _load_user_columns(self, path: Path | None) -> _UserColumns:
        if path is None:
            return _UserColumns(None, {}, clean=True)
        document = load_json(path)
        if not isinstance(document.value, dict) or not document.value:
            raise SourceError(
                f"{path} is not column-oriented user data: expected a JSON object of "
                "equal-length lists (photo_count, ispro, ...), one entry per post"
            )
        columns: dict[str, list[Any]] = {}
        for name, values in document.value.items():
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
        return _UserColumns(path, columns, document.clean)

    # -- joining -------------------------------------------------------------------------------

    def read(self) -> tuple[list[PostDraft], list[LabelDraft]]:
        posts = self._posts()
        # Labels of rejected posts are kept as drafts: assembly quarantines them as unknown posts.
        labels = self._labels()
        self._quarantine_leftovers()
        return posts, labels

    def _posts(self) -> list[PostDraft]:
        posts: list[PostDraft] = []
        text_source = str(self.text.path)
        for index, record in enumerate(self.text.records):
            self.pid_at.append(None)
            if record is None:
                continue
            post_id = self.pid_at[index] = _pid_of(record)
            try:
                post, author = self._post(index, record)
            except _Rejected as rejected:
                self.log.reject_post(
                    str(rejected.source),
                    rejected.record.line,
                    post_id,
                    rejected.reason,
                    rejected.record.raw,
                )
                continue
            if index < len(self.image_lines):
                self._add_media_path(post, self.image_lines[index])
            posts.append(PostDraft(post, author, text_source, record.line, record))
        return posts

    def _post(self, index: int, record: _Record) -> tuple[dict[str, Any], dict[str, Any]]:
        text = _checked(self.text.path, record, TextRecord, self.text.clean)
        post = text.columns(str(self.text.path))
        time_record = self.temporal.get(text.Pid)
        if time_record is None:
            raise _Rejected(
                self.text.path,
                record,
                f"{BAD_TIME}: no record for Pid {text.Pid} in {self.temporal_file.name}",
            )
        temporal = _checked(self.temporal_file, time_record, TemporalRecord, self.temporal_clean)
        post.update(temporal.columns())
        category = self.categories.get(text.Pid)
        if category is not None and self.category_file is not None:
            checked = _checked(self.category_file, category, CategoryRecord, self.categories_clean)
            post.update(checked.columns())
        author: dict[str, Any] = {"post_id": text.Pid, "user_id": text.Uid}
        user_line = self._user_line(text.Pid, index)
        if user_line is not None and self.users.path is not None:
            user = _Record(user_line, self.users.row(user_line - 1))
            author.update(_checked(self.users.path, user, UserRow, self.users.clean).columns())
        return post, author

    def _add_media_path(self, post: dict[str, Any], line: Line) -> None:
        """The post's image path from its line; an unusable line leaves it without one."""
        if line.text is None:
            reason, shown = line.problem or "", line.raw
        else:
            try:
                post["media_path"] = self.resolve_media(line.text.strip())
                return
            except BadValue as unsafe:
                reason, shown = unsafe.reason, line.text
        self.log.add(str(self.image_file), line.number, post["post_id"], reason, shown)

    def _user_line(self, post_id: str, index: int) -> int | None:
        """The 1-based user row of a post (by Pid when the data has one, else by position)."""
        if self.user_by_pid is not None:
            index = self.user_by_pid.get(post_id, len(self.users))
        return index + 1 if index < len(self.users) else None

    def _labels(self) -> list[LabelDraft]:
        if self.label_file is None:
            return []
        source = str(self.label_file)
        labels: list[LabelDraft] = []
        for index, line in enumerate(self.label_lines[: len(self.pid_at)]):
            post_id = self.pid_at[index]
            shown = line.raw if line.text is None else line.text
            if post_id is None:
                self.log.add(
                    source,
                    line.number,
                    None,
                    f"{UNKNOWN_POST}: the post at position {line.number} has no usable Pid",
                    shown,
                )
            elif line.text is None:
                self.log.add(source, line.number, post_id, line.problem or "", shown)
            else:
                try:
                    popularity = parse_score(line.text.strip())
                except PydanticCustomError as error:
                    self.log.add(source, line.number, post_id, reason_of(error, "label"), shown)
                    continue
                labels.append(LabelDraft(post_id, popularity, source, line.number, line.text))
        return labels

    def _quarantine_leftovers(self) -> None:
        """Rows of the side files that belong to no post of the text file: reported, not lost."""
        text_name = self.text.path.name
        text_pids = {post_id for post_id in self.pid_at if post_id is not None}
        for path, by_pid in (
            (self.temporal_file, self.temporal),
            (self.category_file, self.categories),
        ):
            for post_id, record in by_pid.items():
                if post_id not in text_pids and path is not None:
                    self.log.add(
                        str(path),
                        record.line,
                        post_id,
                        f"{UNKNOWN_POST}: Pid {post_id} is not in {text_name}",
                        record.raw,
                    )
        n_posts = len(self.pid_at)
        if self.users.path is not None:
            leftover: list[int] | range
            if self.user_by_pid is None:
                leftover = range(n_posts, len(self.users))
            else:
                owned = {i for pid, i in self.user_by_pid.items() if pid in text_pids}
                leftover = [i for i in range(len(self.users)) if i not in owned]
            for i in leftover:
                self.log.add(
                    str(self.users.path),
                    i + 1,
                    None,
                    f"{UNKNOWN_POST}: user row {i + 1} has no post in {text_name} "
                    f"({n_posts} posts)",
                    raw_json(self.users.row(i)),
                )
        for path, lines in (
            (self.image_file, self.image_lines),
            (self.label_file, self.label_lines),
        ):
            if path is None:
                continue
            for line in lines[n_posts:]:
                self.log.add(
                    str(path),
                    line.number,
                    None,
                    f"{UNKNOWN_POST}: line {line.number} has no post in {text_name} "
                    f"({n_posts} posts)",
                    line.raw if line.text is None else line.text,
                )


def _pid_of(record: _Record) -> str | None:
    try:
        return parse_id(record.values.get("Pid"))
    except PydanticCustomError:
        return None


# -- a draft in SMPD's fields ------------------------------------------------------------------


def parse_draft(body: Mapping[str, Any]) -> Draft:
    """``text`` (a record of ``*_text.json``; ``Pid`` optional), ``temporalspatial_information``,
    optional ``category`` and ``user_data`` (one row of the user data)."""
    text_block = block(body, "text", required=True)
    assert text_block is not None
    text_block.setdefault("Pid", DRAFT_POST_ID)
    text = validated(TextRecord, text_block, "text")
    post = text.columns("draft")  # the same columns the ingest gives a post
    temporal = block(body, "temporalspatial_information", required=True)
    assert temporal is not None
    post.update(validated(TemporalRecord, temporal, "temporalspatial_information").columns())
    category = block(body, "category", required=False)
    if category is not None:
        post.update(validated(CategoryRecord, category, "category").columns())
    user = block(body, "user_data", required=False)
    author = None
    if user is not None:
        author = {"user_id": text.Uid, **validated(UserRow, user, "user_data").columns()}
    return Draft(post, author)


reader = SourceReader(
    name=FORMAT,
    description="A draft in SMPD's fields: its ``_text.json`` and "
    "``_temporalspatial_information.json`` records, optionally its ``_category.json`` record "
    "and ``_user_data.json`` row.",
    read=read_smpd,
    parse_draft=parse_draft,
    blocks=(
        DraftBlock("text", TextRecord, True, "its record of *_text.json"),
        DraftBlock(
            "temporalspatial_information",
            TemporalRecord,
            True,
            "its record of *_temporalspatial_information.json",
        ),
        DraftBlock("category", CategoryRecord, False, "its record of *_category.json"),
        DraftBlock("user_data", UserRow, False, "its author's row of *_user_data.json"),
    ),
    id_field=("text", "Pid"),
    read_files="SMPD json",
)
