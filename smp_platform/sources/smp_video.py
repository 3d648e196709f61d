"""SMP-Video (SMP Challenge 2025, TikTok-style posts): jsonl files of posts, users, videos, labels.

One input is a folder with ``*posts*.jsonl``, ``*users*.jsonl``, optional ``*videos*.jsonl``
and optional ``*popularity*.jsonl``; a folder of such folders (``train/``, ``unlabeled/``) is
read as one load. The users file is a snapshot, one row per uid; each post gets its author's
row in ``post_authors``. ``post_time`` ("2022-08-25 16:15") is taken as UTC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smp_platform.sources.common import (
    CONFLICTING_DUPLICATE,
    MISSING_USER,
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
    iter_jsonl,
    parse_count,
    parse_float,
    parse_id,
    parse_tags,
    parse_text,
    parse_timestamp,
)

FORMAT = "smp-video"
POSTS_PATTERN = "*posts*.jsonl"

# users file field -> post_authors column
_USER_COUNTS = {
    "user_follower_count": "follower_count",
    "user_following_count": "following_count",
    "user_likes_count": "likes_count",
    "user_video_count": "post_count",
    "user_digg_count": "digg_count",
    "user_heart_count": "heart_count",
    "user_friend_count": "friend_count",
}


def read_smp_video(path: Path, *, with_labels: bool = True) -> ParsedBatch:
    """Read an SMP-Video folder (or a folder of them) into canonical rows plus quarantine."""
    log = QuarantineLog()
    posts: list[PostDraft] = []
    labels: list[LabelDraft] = []
    for folder in find_input_dirs(path, POSTS_PATTERN, "SMP-Video"):
        folder_posts, folder_labels = _read_folder(folder, log, with_labels=with_labels)
        posts += folder_posts
        labels += folder_labels
    return assemble_batch(posts, labels, log)


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_file())


def _read_folder(
    folder: Path, log: QuarantineLog, *, with_labels: bool
) -> tuple[list[PostDraft], list[LabelDraft]]:
    user_files = _files(folder, "*users*.jsonl")
    if not user_files:
        raise SourceError(
            f"no *users*.jsonl in {folder}: SMP-Video posts need their authors' file "
            "next to the posts file (as the challenge release ships it)"
        )
    users, rejected_users = _read_users(user_files, log)
    videos = _read_videos(_files(folder, "*videos*.jsonl"), log)
    # Videos are stored relative to the release root ("train/USER/VIDEO.mp4").
    resolve_media = MediaResolver((folder, folder.parent))

    posts: list[PostDraft] = []
    for posts_file in _files(folder, POSTS_PATTERN):
        source = str(posts_file)
        for line, raw, record in iter_jsonl(posts_file, log):
            post_id = _known_id(record.get("pid"))
            try:
                post = _post(record, source, resolve_media)
                user_id = post["user_id"]
                if user_id not in users:
                    why = (
                        "its row in the users file was quarantined"
                        if user_id in rejected_users
                        else "not in the users file"
                    )
                    raise BadValue(MISSING_USER, f"user {user_id} {why}")
                video = videos.get(post["post_id"])
                if video is not None:
                    post.update(video[0])
            except BadValue as bad:
                log.reject_post(source, line, post_id, bad.reason, raw)
                continue
            author = {"post_id": post["post_id"], **users[user_id]}
            posts.append(PostDraft(post, author, source, line, raw))

    # A video row whose post never made it is input that would otherwise vanish unseen.
    loaded = {draft.post["post_id"] for draft in posts}
    for post_id, (_, source, line, raw) in videos.items():
        if post_id not in loaded:
            why = (
                "its post was quarantined"
                if post_id in log.post_ids
                else "no such post in the posts file"
            )
            log.add(source, line, post_id, f"{UNKNOWN_POST}: video for {post_id}, {why}", raw)

    labels: list[LabelDraft] = []
    if with_labels:
        for labels_file in _files(folder, "*popularity*.jsonl"):
            labels += _read_labels(labels_file, log)
    return posts, labels


def _known_id(value: Any) -> str | None:
    try:
        return parse_id(value, "pid")
    except BadValue:
        return None


def _post(record: dict[str, Any], source: str, resolve_media: MediaResolver) -> dict[str, Any]:
    return {
        "post_id": parse_id(record.get("pid"), "pid"),
        "user_id": parse_id(record.get("uid"), "uid"),
        "posted_at": parse_timestamp(record.get("post_time"), "post_time"),
        "title": parse_text(record.get("post_content"), "post_content"),
        "tags": parse_tags(record.get("post_suggested_words"), "post_suggested_words"),
        "language": parse_text(record.get("post_text_language"), "post_text_language"),
        "location": parse_text(record.get("post_location"), "post_location"),
        "media_type": "video",
        "media_path": resolve_media(parse_text(record.get("video_path"), "video_path")),
        "source_format": FORMAT,
        "source_file": source,
    }


def _read_users(
    files: list[Path], log: QuarantineLog
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """uid -> author columns (first row wins on conflict), and uids whose rows were rejected."""
    users: dict[str, dict[str, Any]] = {}
    first_seen: dict[str, tuple[str, int]] = {}
    rejected: set[str] = set()
    for users_file in files:
        source = str(users_file)
        for line, raw, record in iter_jsonl(users_file, log):
            try:
                user_id = parse_id(record.get("uid"), "uid")
                author: dict[str, Any] = {"user_id": user_id}
                for field, column in _USER_COUNTS.items():
                    author[column] = parse_count(record.get(field), field)
            except BadValue as bad:
                log.add(source, line, None, bad.reason, raw)
                uid = record.get("uid")
                if isinstance(uid, str | int) and not isinstance(uid, bool):
                    rejected.add(str(uid).strip())
                continue
            if user_id not in users:
                users[user_id] = author
                first_seen[user_id] = (source, line)
            elif author != users[user_id]:
                first_source, first_line = first_seen[user_id]
                log.add(
                    source,
                    line,
                    None,
                    f"{CONFLICTING_DUPLICATE}: user {user_id} was already read from "
                    f"{Path(first_source).name} line {first_line} with other counts; "
                    "the first is kept",
                    raw,
                )
    return users, rejected


def _read_videos(
    files: list[Path], log: QuarantineLog
) -> dict[str, tuple[dict[str, Any], str, int, str]]:
    """pid -> (media columns, source file, line, raw); first row wins on conflict."""
    videos: dict[str, tuple[dict[str, Any], str, int, str]] = {}
    for videos_file in files:
        source = str(videos_file)
        for line, raw, record in iter_jsonl(videos_file, log):
            post_id = _known_id(record.get("pid"))
            try:
                post_id = parse_id(record.get("pid"), "pid")
                media = {
                    "media_width": parse_float(record.get("video_width"), "video_width"),
                    "media_height": parse_float(record.get("video_height"), "video_height"),
                    "media_duration": parse_float(record.get("video_duration"), "video_duration"),
                    "music_title": parse_text(record.get("music_title"), "music_title"),
                    "music_duration": parse_float(record.get("music_duration"), "music_duration"),
                }
            except BadValue as bad:
                log.add(source, line, post_id, bad.reason, raw)
                continue
            if post_id not in videos:
                videos[post_id] = (media, source, line, raw)
            elif videos[post_id][0] != media:
                _, first_source, first_line, _ = videos[post_id]
                log.add(
                    source,
                    line,
                    post_id,
                    f"{CONFLICTING_DUPLICATE}: video of {post_id} was already read from "
                    f"{Path(first_source).name} line {first_line} with other values; "
                    "the first is kept",
                    raw,
                )
    return videos


def _read_labels(labels_file: Path, log: QuarantineLog) -> list[LabelDraft]:
    source = str(labels_file)
    labels: list[LabelDraft] = []
    for line, raw, record in iter_jsonl(labels_file, log):
        post_id = _known_id(record.get("pid"))
        try:
            post_id = parse_id(record.get("pid"), "pid")
            popularity = parse_float(record.get("popularity"), "popularity")
            if popularity is None:
                raise BadValue(WRONG_TYPE, "popularity is missing")
        except BadValue as bad:
            log.add(source, line, post_id, bad.reason, raw)
            continue
        labels.append(LabelDraft(post_id, popularity, source, line, raw))
    return labels
