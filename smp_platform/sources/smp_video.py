"""SMP-Video (SMP Challenge 2025, TikTok-style posts): jsonl files of posts, users, videos, labels.

One input is a folder with ``*posts*.jsonl``, ``*users*.jsonl``, optional ``*videos*.jsonl``
and optional ``*popularity*.jsonl``; a folder of such folders (``train/``, ``unlabeled/``) is
read as one load. The users file is a snapshot, one row per uid; each post gets its author's
row in ``post_authors``. ``post_time`` ("2022-08-25 16:15") is taken as UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from smp_platform.core.tables import ParsedBatch
from smp_platform.sources.assembly import LabelDraft, PostDraft, assemble_batch
from smp_platform.sources.draft import (
    DRAFT_POST_ID,
    Draft,
    DraftBlock,
    DraftError,
    SourceReader,
    block,
    validated,
)
from smp_platform.sources.fields import (
    Count,
    Id,
    Real,
    Score,
    SourceRecord,
    Tags,
    Text,
    Time,
    absent,
    parse_id,
)
from smp_platform.sources.files import MAX_LINE_BYTES, find_input_dirs, iter_jsonl
from smp_platform.sources.media import MediaResolver
from smp_platform.sources.quarantine import (
    CONFLICTING_DUPLICATE,
    MISSING_USER,
    UNKNOWN_POST,
    BadValue,
    QuarantineLog,
    SourceError,
    reason_of,
)

FORMAT = "smp-video"
POSTS_PATTERN = "*posts*.jsonl"


# -- record models: one per file kind, fields in the order a row is checked --------------------


class PostRecord(SourceRecord):
    """A row of ``*posts*.jsonl``."""

    pid: Id = absent()
    uid: Id = absent()
    post_time: Time = absent()
    post_content: Text = absent()
    post_suggested_words: Tags = absent()
    post_text_language: Text = absent()
    post_location: Text = absent()
    video_path: Text = absent()

    def columns(self, source: str) -> dict[str, Any]:
        return {
            "post_id": self.pid,
            "user_id": self.uid,
            "posted_at": self.post_time,
            "title": self.post_content,
            "tags": self.post_suggested_words,
            "language": self.post_text_language,
            "location": self.post_location,
            "media_type": "video",
            "source_format": FORMAT,
            "source_file": source,
        }


class UserRecord(SourceRecord):
    """A row of ``*users*.jsonl``: the author snapshot, one per uid."""

    uid: Id = absent()
    user_follower_count: Count = absent()
    user_following_count: Count = absent()
    user_likes_count: Count = absent()
    user_video_count: Count = absent()
    user_digg_count: Count = absent()
    user_heart_count: Count = absent()
    user_friend_count: Count = absent()

    def columns(self) -> dict[str, Any]:
        return {
            "user_id": self.uid,
            "follower_count": self.user_follower_count,
            "following_count": self.user_following_count,
            "likes_count": self.user_likes_count,
            "post_count": self.user_video_count,
            "digg_count": self.user_digg_count,
            "heart_count": self.user_heart_count,
            "friend_count": self.user_friend_count,
        }


class VideoRecord(SourceRecord):
    """A row of ``*videos*.jsonl``: the media of one post."""

    pid: Id = absent()
    video_width: Real = absent()
    video_height: Real = absent()
    video_duration: Real = absent()
    music_title: Text = absent()
    music_duration: Real = absent()

    def columns(self) -> dict[str, Any]:
        return {
            "media_width": self.video_width,
            "media_height": self.video_height,
            "media_duration": self.video_duration,
            "music_title": self.music_title,
            "music_duration": self.music_duration,
        }


class PopularityRecord(SourceRecord):
    """A row of ``*popularity*.jsonl``: one post's label."""

    pid: Id = absent()
    popularity: Score = absent()


# -- reading -----------------------------------------------------------------------------------


def read_smp_video(
    path: Path, *, with_labels: bool = True, max_line_bytes: int = MAX_LINE_BYTES
) -> ParsedBatch:
    """Read an SMP-Video folder (or a folder of them) into canonical rows plus quarantine."""
    log = QuarantineLog()
    posts: list[PostDraft] = []
    labels: list[LabelDraft] = []
    for folder in find_input_dirs(path, POSTS_PATTERN, "SMP-Video"):
        reader = _FolderReader(folder, log, max_line_bytes)
        posts += reader.posts()
        if with_labels:
            labels += reader.labels()
    return assemble_batch(posts, labels, log)


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_file())


def _known_id(value: Any) -> str | None:
    """The post id of a row that failed validation, when it has a usable one."""
    try:
        return parse_id(value)
    except PydanticCustomError:
        return None


class _FolderReader:
    """One SMP-Video folder: its users and videos are read first, then posts join them."""

    def __init__(self, folder: Path, log: QuarantineLog, max_line_bytes: int) -> None:
        self.folder, self.log, self.max_line_bytes = folder, log, max_line_bytes
        user_files = _files(folder, "*users*.jsonl")
        if not user_files:
            raise SourceError(
                f"no *users*.jsonl in {folder}: SMP-Video posts need their authors' file "
                "next to the posts file (as the challenge release ships it)"
            )
        self.users, self.rejected_users = self._read_users(user_files)
        self.videos = self._read_videos(_files(folder, "*videos*.jsonl"))
        # Videos are stored relative to the release root ("train/USER/VIDEO.mp4").
        self.resolve_media = MediaResolver((folder, folder.parent))

    def _rows(self, path: Path) -> Any:
        return iter_jsonl(path, self.log, self.max_line_bytes)

    def posts(self) -> list[PostDraft]:
        log = self.log
        posts: list[PostDraft] = []
        for posts_file in _files(self.folder, POSTS_PATTERN):
            source = str(posts_file)
            for line, raw, record in self._rows(posts_file):
                try:
                    parsed = PostRecord.model_validate(record)
                except ValidationError as error:
                    log.reject_post(
                        source, line, _known_id(record.get("pid")), reason_of(error), raw
                    )
                    continue
                post = parsed.columns(source)
                post_id, user_id = parsed.pid, parsed.uid
                if user_id not in self.users:
                    why = (
                        "its row in the users file was quarantined"
                        if user_id in self.rejected_users
                        else "not in the users file"
                    )
                    log.reject_post(
                        source, line, post_id, f"{MISSING_USER}: user {user_id} {why}", raw
                    )
                    continue
                video = self.videos.get(post_id)
                if video is not None:
                    post.update(video[0])
                try:
                    post["media_path"] = self.resolve_media(parsed.video_path)
                except BadValue as unsafe:  # the post stays, without its media
                    log.add(source, line, post_id, unsafe.reason, raw)
                author = {"post_id": post_id, **self.users[user_id]}
                posts.append(PostDraft(post, author, source, line, raw))

        # A video row whose post never made it is input that would otherwise vanish unseen.
        loaded = {draft.post["post_id"] for draft in posts}
        for post_id, (_, source, line, raw) in self.videos.items():
            if post_id not in loaded:
                why = (
                    "its post was quarantined"
                    if post_id in log.post_ids
                    else "no such post in the posts file"
                )
                log.add(source, line, post_id, f"{UNKNOWN_POST}: video for {post_id}, {why}", raw)
        return posts

    def labels(self) -> list[LabelDraft]:
        labels: list[LabelDraft] = []
        for labels_file in _files(self.folder, "*popularity*.jsonl"):
            source = str(labels_file)
            for line, raw, record in self._rows(labels_file):
                try:
                    parsed = PopularityRecord.model_validate(record)
                except ValidationError as error:
                    self.log.add(source, line, _known_id(record.get("pid")), reason_of(error), raw)
                    continue
                labels.append(LabelDraft(parsed.pid, parsed.popularity, source, line, raw))
        return labels

    def _read_users(self, files: list[Path]) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """uid -> author columns (first row wins on conflict), and uids whose rows were rejected."""
        users: dict[str, dict[str, Any]] = {}
        first_seen: dict[str, tuple[str, int]] = {}
        rejected: set[str] = set()
        for users_file in files:
            source = str(users_file)
            for line, raw, record in self._rows(users_file):
                try:
                    author = UserRecord.model_validate(record).columns()
                except ValidationError as error:
                    self.log.add(source, line, None, reason_of(error), raw)
                    uid = record.get("uid")
                    if isinstance(uid, str | int) and not isinstance(uid, bool):
                        rejected.add(str(uid).strip())
                    continue
                user_id = author["user_id"]
                if user_id not in users:
                    users[user_id] = author
                    first_seen[user_id] = (source, line)
                elif author != users[user_id]:
                    first_source, first_line = first_seen[user_id]
                    self.log.add(
                        source,
                        line,
                        None,
                        f"{CONFLICTING_DUPLICATE}: user {user_id} was already read from "
                        f"{Path(first_source).name} line {first_line} with other counts; "
                        "the first is kept",
                        raw,
                    )
        return users, rejected

    def _read_videos(self, files: list[Path]) -> dict[str, tuple[dict[str, Any], str, int, str]]:
        """pid -> (media columns, source file, line, raw); first row wins on conflict."""
        videos: dict[str, tuple[dict[str, Any], str, int, str]] = {}
        for videos_file in files:
            source = str(videos_file)
            for line, raw, record in self._rows(videos_file):
                try:
                    parsed = VideoRecord.model_validate(record)
                except ValidationError as error:
                    self.log.add(source, line, _known_id(record.get("pid")), reason_of(error), raw)
                    continue
                post_id, media = parsed.pid, parsed.columns()
                if post_id not in videos:
                    videos[post_id] = (media, source, line, raw)
                elif videos[post_id][0] != media:
                    _, first_source, first_line, _ = videos[post_id]
                    self.log.add(
                        source,
                        line,
                        post_id,
                        f"{CONFLICTING_DUPLICATE}: video of {post_id} was already read from "
                        f"{Path(first_source).name} line {first_line} with other values; "
                        "the first is kept",
                        raw,
                    )
        return videos


# -- a draft in SMP-Video's fields -------------------------------------------------------------


def parse_draft(body: Mapping[str, Any]) -> Draft:
    """``post`` (a row of ``*posts*.jsonl``; ``pid`` optional), optional ``video`` (a row of
    ``*videos*.jsonl``) and ``user`` (a row of ``*users*.jsonl``)."""
    post_block = block(body, "post", required=True)
    assert post_block is not None
    post_block.setdefault("pid", DRAFT_POST_ID)
    post_block["video_path"] = None  # never a path a request names
    parsed = validated(PostRecord, post_block, "post")
    post = parsed.columns("draft")
    video = block(body, "video", required=False)
    if video is not None:
        video.setdefault("pid", parsed.pid)
        post.update(validated(VideoRecord, video, "video").columns())
    author = None
    user = block(body, "user", required=False)
    if user is not None:
        user.setdefault("uid", parsed.uid)
        author = validated(UserRecord, user, "user").columns()
        if author["user_id"] != parsed.uid:
            raise DraftError(f"wrong type: user.uid {author['user_id']!r} is not post.uid")
    return Draft(post, author)


reader = SourceReader(
    name=FORMAT,
    description="A draft in SMP-Video's fields: a ``*posts*.jsonl`` row (``pid`` optional), "
    "optionally its ``*videos*.jsonl`` and ``*users*.jsonl`` rows.",
    read=read_smp_video,
    parse_draft=parse_draft,
    blocks=(
        DraftBlock("post", PostRecord, True, "a row of *posts*.jsonl"),
        DraftBlock("video", VideoRecord, False, "its row of *videos*.jsonl"),
        DraftBlock("user", UserRecord, False, "its author's row of *users*.jsonl"),
    ),
    id_field=("post", "pid"),
    read_files="SMP-Video jsonl",
)
