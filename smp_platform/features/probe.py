"""Two made-up posts by one author, with everything a group may read: what a group's compute
is run on once per process before its first real batch (see
:func:`smp_platform.features.runtime.model_of`). One post has every field, the other almost
none (no text, no tags, no author counts), as real posts do."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import numpy as np
import pandas as pd

from smp_platform.core.tables import AUTHOR_COLUMNS, POST_COLUMNS, frame_from_records
from smp_platform.features.group import FeatureInputs, Input

_FULL = {
    "post_id": "__probe_full__",
    "user_id": "__probe_author__",
    "posted_at": datetime(2024, 5, 1, 12, 30),
    "title": "A quiet morning by the lake #nature",
    "tags": ["lake", "morning walk"],
    "language": "en",
    "location": "US",
    "latitude": 40.7,
    "longitude": -74.0,
    "geo_accuracy": 16.0,
    "category": "Travel",
    "subcategory": "Lake",
    "concept": "morning",
    "media_type": "video",
    "media_width": 720.0,
    "media_height": 1280.0,
    "media_duration": 12.5,
    "music_title": "original sound",
    "music_duration": 12.5,
    "caption": "a lake in the morning",
    "source_format": "probe",
    "content_hash": "probe-full",
    "follower_count": 120,
    "following_count": 80,
    "likes_count": 3400,
    "post_count": 42,
    "digg_count": 10,
    "heart_count": 3400,
    "friend_count": 5,
    "is_pro": False,
    "first_post_at": datetime(2020, 1, 1),
    "timezone_offset": 0.0,
}
_EMPTY = {
    "post_id": "__probe_empty__",
    "user_id": "__probe_author__",
    "posted_at": datetime(2024, 5, 2, 8, 0),
    "title": "",
    "tags": [],
    "source_format": "probe",
    "content_hash": "probe-empty",
}
_AUTHOR = {k: v for k, v in AUTHOR_COLUMNS.items() if k not in ("post_id", "user_id")}


def probe_inputs(reads: Collection[Input]) -> FeatureInputs:
    """The probe batch, with the inputs ``reads`` names (the others None)."""
    columns = {**POST_COLUMNS, **{k: v for k, v in _AUTHOR.items() if k != "content_hash"}}
    posts = frame_from_records([_FULL, _EMPTY], columns)
    posts["author_content_hash"] = ["probe-author", None]
    history = None
    if Input.AUTHOR_HISTORY in reads:
        history = pd.DataFrame(
            {
                "post_id": posts["post_id"],
                "author_prior_posts": pd.array([3, 4], dtype="Int64"),
                "author_days_since_previous_post": [2.5, np.nan],
            }
        )
    labels = None
    if Input.LABEL_HISTORY in reads:
        earlier = {"post_id": "__probe_earlier__", "posted_at": datetime(2024, 4, 1)}
        rows = [
            earlier,
            *({"post_id": r["post_id"], "posted_at": r["posted_at"]} for r in (_FULL, _EMPTY)),
        ]
        labels = pd.DataFrame(rows).assign(
            user_id="__probe_author__", popularity=[6.5, np.nan, np.nan]
        )
        labels = labels[["post_id", "user_id", "posted_at", "popularity"]]
    return FeatureInputs(posts, history, labels)
