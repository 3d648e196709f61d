"""Tabular features on hand-made rows with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from smp_platform.features.groups import tabular as tabular_group
from smp_platform.features.tabular import (
    compute_author_features,
    compute_content_features,
    compute_temporal_features,
)


def _posts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "post_id": ["p1", "p2"],
            "user_id": ["u1", "u1"],
            "posted_at": pd.to_datetime(
                ["2023-07-03 14:30:00", "2023-07-08 23:59:59.1234567"], format="ISO8601"
            ),
            "title": ["Sunset at #beach with FRIENDS 2023", ""],
            "tags": [["beach", "sunset"], []],
            "language": ["en", None],
            "location": ["US", ""],
            "category": [None, None],
            "subcategory": [None, None],
            "concept": [None, None],
            "media_type": ["video", "video"],
            "media_width": [720.0, -1.0],
            "media_height": [1280.0, 0.0],
            "media_duration": [15.0, None],
            "music_title": ["original sound - someone", "Song"],
            "music_duration": [15.0, 30.0],
            "latitude": [0.0, 48.85],
            "longitude": [0.0, 2.35],
            "geo_accuracy": [None, 16.0],
            "follower_count": [999, -5],
            "following_count": [0, None],
            "likes_count": [10_000, 50],
            "post_count": [100, 0],
            "digg_count": [1, 2],
            "friend_count": [0, 0],
            "is_pro": [True, None],
            "first_post_at": pd.to_datetime(["2023-06-03 14:30", None]),
        }
    )


def test_temporal_features_match_the_calendar() -> None:
    out = compute_temporal_features(_posts())
    assert list(out.columns) == [
        "post_id",
        "event_timestamp",
        *tabular_group.TEMPORAL.feature_names,
    ]
    assert out.loc[0, "post_hour"] == 14
    assert out.loc[0, "post_weekday"] == 0  # 2023-07-03 was a Monday
    assert out.loc[1, "post_weekday"] == 5
    assert out.loc[0, "post_month"] == 7
    assert out.loc[0, "post_day_of_year"] == 184
    assert out.loc[0, "post_epoch_days"] == pytest.approx(19541 + 14.5 / 24)
    # Feast needs microsecond timestamps.
    assert out["event_timestamp"].iloc[1] == pd.Timestamp("2023-07-08 23:59:59.123456")


def test_author_features_log_scale_and_treat_negative_counts_as_unknown() -> None:
    history = pd.DataFrame(
        {
            "post_id": ["p1", "p2"],
            "author_prior_posts": [0, 1],
            "author_days_since_previous_post": [None, 5.4],
        }
    )
    out = compute_author_features(_posts(), history)
    assert list(out.columns) == ["post_id", "event_timestamp", *tabular_group.AUTHOR.feature_names]
    assert out.loc[0, "author_follower_count_log"] == pytest.approx(math.log1p(999))
    assert math.isnan(out.loc[1, "author_follower_count_log"])  # -5 followers: unknown
    assert out.loc[0, "author_likes_per_post_log"] == pytest.approx(math.log1p(100))
    assert math.isnan(out.loc[1, "author_likes_per_post_log"])  # zero posts: no ratio
    assert out.loc[0, "author_follower_following_log_ratio"] == pytest.approx(math.log1p(999))
    assert out.loc[0, "author_is_pro"] == 1.0 and math.isnan(out.loc[1, "author_is_pro"])
    assert out.loc[0, "author_account_age_days"] == pytest.approx(30.0)
    assert out["author_prior_posts"].tolist() == [0, 1]
    assert out.loc[1, "author_days_since_previous_post"] == pytest.approx(5.4)


def test_content_features_count_text_and_clean_media() -> None:
    out = compute_content_features(_posts())
    assert list(out.columns) == ["post_id", "event_timestamp", *tabular_group.CONTENT.feature_names]
    first, second = out.iloc[0], out.iloc[1]
    assert first["title_length"] == len("Sunset at #beach with FRIENDS 2023")
    assert first["title_word_count"] == 6
    assert first["title_hashtag_count"] == 1
    assert first["title_digit_count"] == 4
    assert first["title_uppercase_ratio"] == pytest.approx(8 / 24)
    assert first["tag_count"] == 2 and first["tags_length"] == len("beach") + len("sunset")
    assert second["title_length"] == 0 and second["title_uppercase_ratio"] == 0.0
    assert first["language"] == "en" and second["language"] == "unknown"
    assert second["location"] == "unknown"
    assert first["media_aspect_ratio"] == pytest.approx(720 / 1280)
    assert np.isnan(second["media_width"]) and np.isnan(second["media_aspect_ratio"])
    assert bool(first["music_is_original"]) and not bool(second["music_is_original"])
    # 0/0 is SMPD's "no location", not a place.
    assert np.isnan(first["latitude"]) and second["latitude"] == pytest.approx(48.85)
