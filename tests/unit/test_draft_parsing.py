"""Drafts: parsed by the sources' record models, the author's history, the feature block, which
encoders a champion needs, and the SHAP contributions grouped by view."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from smp_platform.core.config import EncoderSettings, Settings
from smp_platform.online.authors import AuthorIndex
from smp_platform.online.block import block_from_frames
from smp_platform.online.scoring import (
    DraftScoringUnavailable,
    contributions_by_view,
    draft_groups,
    draft_inputs,
    load_draft_models,
)
from smp_platform.sources import parse_draft
from smp_platform.sources.draft import DRAFT_POST_ID, DraftError
from smp_platform.testing.feature_frames import builtin_groups

GROUPS = builtin_groups()

VIDEO_DRAFT = {
    "format": "smp-video",
    "post": {
        "uid": "USER1",
        "post_content": "falcon training #birds",
        "post_suggested_words": ["falconry", "birds"],
        "post_text_language": "en",
        "post_location": "CA",
        "post_time": "2022-08-25 16:15",
        "video_path": "../../etc/passwd",
    },
    "video": {"video_width": 576, "video_height": 1080, "video_duration": 46},
    "user": {"user_follower_count": 1000, "user_following_count": -3},
}


def test_smp_video_draft_parses_to_warehouse_columns() -> None:
    draft = parse_draft(VIDEO_DRAFT)
    assert draft.post["post_id"] == DRAFT_POST_ID
    assert draft.post["posted_at"] == datetime(2022, 8, 25, 16, 15)
    assert draft.post["title"] == "falcon training #birds"
    assert draft.post["tags"] == ["falconry", "birds"]
    assert draft.post["media_width"] == 576 and draft.post["media_duration"] == 46
    assert "media_path" not in draft.post  # a path the request names is never kept
    assert draft.author is not None
    assert draft.author["follower_count"] == 1000
    assert draft.author["following_count"] is None  # negative counts are unknown, as loaded


def test_smpd_draft_parses_like_the_smpd_reader() -> None:
    draft = parse_draft(
        {
            "format": "smpd",
            "text": {"Uid": "59@N00", "Title": "Sunset", "Alltags": "sea sunset", "Mediatype": 1},
            "temporalspatial_information": {
                "Postdate": "1446744647",
                "Latitude": "0",
                "Longitude": 0,
            },
            "category": {"Category": "Travel", "Concept": "beach"},
            "user_data": {"photo_count": 12, "ispro": 1},
        }
    )
    assert draft.post["tags"] == ["sea", "sunset"]
    assert draft.post["latitude"] is None and draft.post["longitude"] is None
    assert draft.post["category"] == "Travel" and draft.post["concept"] == "beach"
    assert draft.author == {
        "user_id": "59@N00",
        "post_count": 12,
        "is_pro": True,
        "first_post_at": None,
        "timezone_offset": None,
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"format": "tiktok"}, "format is 'tiktok'"),
        ({"format": "smp-video"}, "no 'post' block"),
        ({"format": "smp-video", "post": []}, "post is a list"),
        (
            {"format": "smp-video", "post": {**VIDEO_DRAFT["post"], "post_time": "soon"}},
            "bad time: post.post_time",
        ),
        ({"format": "smp-video", "post": {"post_time": "2022-01-01"}}, "missing id: post.uid"),
        (
            {**VIDEO_DRAFT, "video": {"video_width": "wide"}},
            "wrong type: video.video_width",
        ),
        ({**VIDEO_DRAFT, "user": {"uid": "USER2"}}, "user.uid 'USER2' is not post.uid"),
        ({"format": "smpd", "text": {"Uid": "u"}}, "no 'temporalspatial_information' block"),
    ],
)
def test_invalid_drafts_say_which_field_and_why(body: dict, reason: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(DraftError, match=reason.replace("(", r"\(")):
        parse_draft(body)


def _index() -> AuthorIndex:
    stamps = pd.to_datetime(["2022-01-01 10:00", "2022-01-03 10:00", "2022-01-03 10:00"])
    return AuthorIndex(
        times={"USER1": stamps.to_numpy(dtype="datetime64[us]")},
        latest={"USER1": {"follower_count": 5, "post_count": 3}},
    )


def test_author_history_counts_posts_strictly_before() -> None:
    index = _index()
    assert index.history("USER1", datetime(2022, 1, 1, 10)) == (
        0,
        pytest.approx(np.nan, nan_ok=True),
    )
    assert index.history("USER1", datetime(2022, 1, 2, 10)) == (1, pytest.approx(1.0))
    # two posts at the same instant do not precede each other
    assert index.history("USER1", datetime(2022, 1, 3, 10)) == (1, pytest.approx(2.0))
    assert index.history("USER1", datetime(2022, 1, 4, 4)) == (3, pytest.approx(0.75))
    prior, days = index.history("NOBODY", datetime(2022, 1, 4))
    assert prior == 0 and np.isnan(days)


def test_draft_posts_take_the_drafts_user_block_else_the_latest_stored_author() -> None:
    index = _index()
    given = parse_draft({**VIDEO_DRAFT, "post": {**VIDEO_DRAFT["post"], "uid": "USER1"}})
    inputs, known = draft_inputs(given, index)
    posts, history = inputs.posts, inputs.author_history
    assert known and posts["follower_count"].iloc[0] == 1000  # the draft's own block wins
    assert history["author_prior_posts"].iloc[0] == 3
    stored = {k: v for k, v in VIDEO_DRAFT.items() if k != "user"}
    stored["post"] = {**VIDEO_DRAFT["post"], "uid": "USER1"}
    posts = draft_inputs(parse_draft(stored), index)[0].posts
    assert posts["follower_count"].iloc[0] == 5 and posts["post_count"].iloc[0] == 3
    inputs, known = draft_inputs(parse_draft(VIDEO_DRAFT), AuthorIndex())
    posts, history = inputs.posts, inputs.author_history
    assert not known and history["author_prior_posts"].iloc[0] == 0
    assert posts["media_path"].iloc[0] is None


def test_feature_block_types_as_the_online_read() -> None:
    frame = pd.DataFrame(
        {
            "post_id": ["draft"],
            "author_prior_posts": [3],
            "music_is_original": [True],
            "language": [None],
            "latitude": [np.nan],
            "text_embedding": [np.array([0.5, 0.5], dtype=np.float32)],
        }
    )
    block = block_from_frames([frame], GROUPS.fields, ["draft"] * 3)
    assert len(block) == 3 and block.found.all()
    assert block.numeric["author_prior_posts"].tolist() == [3.0] * 3
    assert block.numeric["music_is_original"].tolist() == [1.0] * 3
    assert np.isnan(block.numeric["latitude"]).all()
    assert block.strings["language"] == [None] * 3
    assert block.embeddings["text_embedding"][2].dtype == np.float32
    assert "post_id" not in block.numeric


def _scorer(**parts):  # type: ignore[no-untyped-def]
    numeric = parts.get("numeric", ["author_follower_count_log", "post_hour"])
    categorical = parts.get("categorical", ["language"])
    embeddings = parts.get("embeddings", [])
    return SimpleNamespace(column_features=[*numeric, *categorical, *embeddings])


def _needed(scorer) -> set[str]:  # type: ignore[no-untyped-def]
    return {group.name for group in draft_groups(GROUPS, scorer)[0]}


def test_encoders_are_needed_only_for_groups_the_champion_reads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    off = Settings(data_dir=tmp_path, encoders=EncoderSettings(text_model=None))
    tabular = _scorer()
    assert _needed(tabular) == {"tabular"}
    # trained without them: scored without them (nothing to load, nothing raised)
    load_draft_models(off, draft_groups(GROUPS, tabular)[0])
    with_text = _scorer(embeddings=["text_embedding"])
    assert _needed(with_text) == {"tabular", "text"}
    with pytest.raises(DraftScoringUnavailable, match="text group the champion was trained"):
        load_draft_models(off, draft_groups(GROUPS, with_text)[0])
    # a group that cannot run at request time is listed, not loaded
    with_image = _scorer(embeddings=["image_embedding"])
    needed, not_computed = draft_groups(GROUPS, with_image)
    assert {g.name for g in needed} == {"tabular"}
    assert set(not_computed) == {"post_image_semantics"}
    assert "no media file" in not_computed["post_image_semantics"]


def test_contributions_are_grouped_by_view_and_sorted() -> None:
    scorer = SimpleNamespace(
        column_features=[
            "author_follower_count_log",
            "post_hour",
            "language",
            "text_embedding",
            "text_embedding",
            "perplexity",
        ]
    )
    block = block_from_frames(
        [
            pd.DataFrame(
                {
                    "author_follower_count_log": [9.5],
                    "post_hour": [16],
                    "language": ["en"],
                    "text_embedding": [np.zeros(4, dtype=np.float32)],
                    "perplexity": [np.inf],
                }
            )
        ],
        GROUPS.fields,
        ["draft"],
    )
    shap = np.array([0.3, -0.1, 0.05, -0.4, -0.2, 0.01])
    out = contributions_by_view(scorer, shap, block, GROUPS.view_of)
    assert [c["view"] for c in out] == [
        "post_text_semantics",
        "post_author",
        "post_temporal",
        "post_content",
        "post_perplexity",
    ]
    assert out[0]["contribution"] == pytest.approx(-0.6)
    assert out[0]["features"] == [
        {"feature": "text_embedding", "value": "4-d embedding", "contribution": pytest.approx(-0.6)}
    ]
    assert out[1]["features"][0]["value"] == 9.5
    assert out[-1]["features"][0]["value"] is None  # inf is not JSON: shown as unknown


def test_smp_score_says_what_is_wrong_with_a_draft_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    bad = tmp_path / "draft.json"
    bad.write_text('{"format": "smp-video", "post": {"uid": "u1", "post_time": "soon"}}')
    runs = {
        name: subprocess.run(
            [sys.executable, "-m", "smp_platform.cli", "--data-dir", str(tmp_path / "d"), "score"]
            + ["--input", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        for name, path in (("missing", tmp_path / "nope.json"), ("bad", bad))
    }
    assert runs["missing"].returncode == 2 and "no draft file" in runs["missing"].stderr
    assert runs["bad"].returncode == 2
    assert "bad time: post.post_time" in runs["bad"].stderr
