"""A pushed post: the draft's shape with the post's id, the same warehouse rows as its files
would give, a bearer token compared safely, and a pushed event time older than any post."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from smp_platform.online.push import parse_pushed_post, pushed_batch
from smp_platform.service.routers.push import bearer_matches
from smp_platform.sources.draft import DraftError
from smp_platform.testing.feature_frames import builtin_groups

POST = {
    "pid": "P1",
    "uid": "U1",
    "post_content": "sunset,over,the,bay",
    "post_suggested_words": ["sunset", "bay walk"],
    "post_text_language": "en",
    "post_location": "US",
    "video_path": "train/U1/V1.mp4",
    "post_time": "2023-12-07 09:57",
}
USER = {"uid": "U1", "user_follower_count": 10, "user_following_count": 3}
VIDEO = {"pid": "P1", "video_width": 720, "video_height": 1280, "video_duration": 12.5}


def test_a_pushed_post_needs_its_id() -> None:
    no_pid = {"format": "smp-video", "post": {k: v for k, v in POST.items() if k != "pid"}}
    with pytest.raises(DraftError, match=r"missing id: post\.pid"):
        parse_pushed_post(no_pid)
    with pytest.raises(DraftError, match=r"missing id: post\.pid"):
        parse_pushed_post({"format": "smp-video", "post": {**POST, "pid": "  "}})
    with pytest.raises(DraftError, match="reserved for drafts"):
        parse_pushed_post({"format": "smp-video", "post": {**POST, "pid": "draft"}})
    smpd = {
        "format": "smpd",
        "text": {"Uid": "someone@N00", "Title": "sunset"},
        "temporalspatial_information": {"Postdate": "1446744647"},
    }
    with pytest.raises(DraftError, match=r"missing id: text\.Pid"):
        parse_pushed_post(smpd)
    assert (
        parse_pushed_post({**smpd, "text": {**smpd["text"], "Pid": "42"}}).post["post_id"] == "42"
    )


def test_a_pushed_post_is_validated_like_its_file_row() -> None:
    with pytest.raises(DraftError, match=r"bad time: post\.post_time"):
        parse_pushed_post({"format": "smp-video", "post": {**POST, "post_time": "yesterday"}})
    with pytest.raises(DraftError, match=r"video\.video_width"):
        parse_pushed_post(
            {"format": "smp-video", "post": POST, "video": {**VIDEO, "video_width": "wide"}}
        )


def test_pushed_rows_hash_like_the_file_readers_rows(tmp_path: Path) -> None:
    """Same post, same content hashes as `smp ingest` of its files gives (a later load of the
    same post from files is 'unchanged', save for its media path, which a push never has)."""
    import json

    from smp_platform.sources.smp_video import read_smp_video

    for name, rows in (
        ("posts", [{**POST, "video_path": None}]),
        ("users", [USER]),
        ("videos", [VIDEO]),
    ):
        (tmp_path / f"x_{name}_train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from_files = read_smp_video(tmp_path)
    draft = parse_pushed_post({"format": "smp-video", "post": POST, "video": VIDEO, "user": USER})
    pushed = pushed_batch(draft, {**draft.author, "post_id": "P1"}, "POST /v1/posts")
    assert pushed.posts["content_hash"].tolist() == from_files.posts["content_hash"].tolist()
    assert pushed.authors["content_hash"].tolist() == from_files.authors["content_hash"].tolist()
    assert pushed.posts["media_path"].isna().all()
    assert pushed.posts["source_file"].tolist() == ["POST /v1/posts"]
    assert pushed.labels.empty and pushed.quarantine.empty


def test_bearer_token_comparison() -> None:
    assert bearer_matches("Bearer s3cret", "s3cret")
    assert bearer_matches("bearer  s3cret ", "s3cret")
    assert not bearer_matches("Bearer s3cre", "s3cret")
    assert not bearer_matches("Basic s3cret", "s3cret")
    assert not bearer_matches("Bearer", "s3cret")
    assert not bearer_matches(None, "s3cret")
    assert not bearer_matches("Bearer jeton-\u00e9", "s3cret")  # non-ASCII: no TypeError
    assert bearer_matches("Bearer jeton-\u00e9", "jeton-\u00e9")


def test_the_pushed_event_time_is_older_than_any_post_the_sources_accept() -> None:
    from pydantic_core import PydanticCustomError

    from feature_repo.data_sources import PUSHED_EVENT_TIME
    from smp_platform.sources.fields import parse_timestamp

    earliest = parse_timestamp("1990-01-01 00:00")
    assert earliest.replace(tzinfo=UTC) > PUSHED_EVENT_TIME
    with pytest.raises(PydanticCustomError):
        parse_timestamp(PUSHED_EVENT_TIME.replace(tzinfo=None).isoformat())
    # Redis reads a stored time of 0 as "no time": the pushed one is not the epoch itself
    assert datetime(1970, 1, 1, tzinfo=UTC) < PUSHED_EVENT_TIME


def test_pushed_views_read_through_push_sources(tmp_path: Path) -> None:
    from feast import PushSource

    from feature_repo.data_sources import push_source_name
    from feature_repo.entities import build_entity
    from feature_repo.feature_views import build_feature_views

    groups = builtin_groups()
    PUSHED_VIEWS = {v.name for g in groups.request_time for v in g.views}
    views = build_feature_views(groups, tmp_path, build_entity())
    assert "post_image_semantics" not in PUSHED_VIEWS and "post_author" in PUSHED_VIEWS
    for name, view in views.items():
        if name in PUSHED_VIEWS:
            assert isinstance(view.stream_source, PushSource)
            assert view.stream_source.name == push_source_name(name)
            # training and materialize still read the view's parquet
            assert view.batch_source.path == str(tmp_path.resolve() / name / "*.parquet")
        else:
            assert view.stream_source is None
