"""Tabular features: pure functions, posts frame in, feature frame out.

Inputs are the warehouse's canonical columns (docs/CONTRACTS.md): ``posts`` joined with
``post_authors`` plus, for author history, :meth:`Warehouse.author_history`. Outputs carry
``post_id``, ``event_timestamp`` and the fields of one view of the tabular group
(:mod:`smp_platform.features.groups.tabular`, which declares them).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from smp_platform.features.author_history import AUTHOR_HISTORY_FIELDS, compute_author_history
from smp_platform.features.schema import EVENT_TIMESTAMP
from smp_platform.features.tags import tag_terms

_HASHTAG = re.compile(r"#\w+")
_WORD = re.compile(r"\w+", re.UNICODE)
SECONDS_PER_DAY = 86_400.0


def _log_count(values: pd.Series) -> pd.Series:
    """log1p of a count; negative or missing counts are unknown (NaN), not zero."""
    numeric = pd.to_numeric(values, errors="coerce").astype("float64")
    return np.log1p(numeric.where(numeric >= 0))


def _keys(posts: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "post_id": posts["post_id"].astype(str).to_numpy(),
            EVENT_TIMESTAMP: pd.to_datetime(posts["posted_at"]).dt.floor("us").to_numpy(),
        }
    )


def compute_author_features(posts: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Author statistics as of the post (counts log-scaled; history from the warehouse)."""
    out = _keys(posts)
    followers = _log_count(posts["follower_count"]).to_numpy()
    following = _log_count(posts["following_count"]).to_numpy()
    likes = pd.to_numeric(posts["likes_count"], errors="coerce").astype("float64")
    post_count = pd.to_numeric(posts["post_count"], errors="coerce").astype("float64")
    out["author_follower_count_log"] = followers
    out["author_following_count_log"] = following
    out["author_likes_count_log"] = _log_count(posts["likes_count"]).to_numpy()
    out["author_post_count_log"] = _log_count(posts["post_count"]).to_numpy()
    out["author_digg_count_log"] = _log_count(posts["digg_count"]).to_numpy()
    out["author_friend_count_log"] = _log_count(posts["friend_count"]).to_numpy()
    per_post = likes.where(likes >= 0) / post_count.where(post_count > 0)
    out["author_likes_per_post_log"] = np.log1p(per_post).to_numpy()
    out["author_follower_following_log_ratio"] = followers - following
    is_pro = posts["is_pro"].astype("float64") if "is_pro" in posts else np.nan
    out["author_is_pro"] = np.asarray(is_pro, dtype="float64")
    first = pd.to_datetime(posts["first_post_at"], errors="coerce")
    posted = pd.to_datetime(posts["posted_at"])
    out["author_account_age_days"] = (
        (posted - first).dt.total_seconds() / SECONDS_PER_DAY
    ).to_numpy()
    hist = history.set_index("post_id").reindex(out["post_id"])
    out["author_prior_posts"] = hist["author_prior_posts"].fillna(0).astype("int64").to_numpy()
    out["author_days_since_previous_post"] = (
        hist["author_days_since_previous_post"].astype("float64").to_numpy()
    )
    return out


def compute_temporal_features(posts: pd.DataFrame) -> pd.DataFrame:
    """When the post was published (UTC)."""
    out = _keys(posts)
    ts = pd.to_datetime(posts["posted_at"])
    out["post_hour"] = ts.dt.hour.astype("int64").to_numpy()
    out["post_weekday"] = ts.dt.weekday.astype("int64").to_numpy()
    out["post_month"] = ts.dt.month.astype("int64").to_numpy()
    out["post_day_of_year"] = ts.dt.dayofyear.astype("int64").to_numpy()
    epoch = ts.astype("datetime64[us]").astype("int64") / 1e6 / SECONDS_PER_DAY
    out["post_epoch_days"] = np.asarray(epoch, dtype="float64")
    return out


def _tag_list(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [str(t) for t in list(value)]  # type: ignore[call-overload]


def _category(values: pd.Series | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, "unknown", dtype=object)
    cleaned = values.astype("string").str.strip().replace("", pd.NA).fillna("unknown")
    return cleaned.astype(object).to_numpy()


def _numeric(posts: pd.DataFrame, column: str, *, non_negative: bool = True) -> np.ndarray:
    if column not in posts:
        return np.full(len(posts), np.nan)
    values = pd.to_numeric(posts[column], errors="coerce").astype("float64")
    return (values.where(values >= 0) if non_negative else values).to_numpy()


def compute_content_features(posts: pd.DataFrame) -> pd.DataFrame:
    """Text statistics, language, location, category and media metadata."""
    out = _keys(posts)
    n = len(posts)
    title = posts["title"].fillna("").astype(str)
    words = title.map(lambda t: len(_WORD.findall(t)))
    hashtags = title.map(lambda t: len(_HASHTAG.findall(t)))
    letters = title.map(lambda t: sum(c.isalpha() for c in t))
    upper = title.map(lambda t: sum(c.isupper() for c in t))
    tags = posts["tags"].map(_tag_list)
    out["title_length"] = title.str.len().astype("int64").to_numpy()
    out["title_word_count"] = words.astype("int64").to_numpy()
    out["title_hashtag_count"] = hashtags.astype("int64").to_numpy()
    out["title_uppercase_ratio"] = (upper / letters.where(letters > 0)).fillna(0.0).to_numpy()
    out["title_digit_count"] = (
        title.map(lambda t: sum(c.isdigit() for c in t)).astype("int64").to_numpy()
    )
    out["tag_count"] = tags.map(len).astype("int64").to_numpy()
    out["tags_length"] = tags.map(lambda ts: sum(len(t) for t in ts)).astype("int64").to_numpy()
    for column in ("language", "location", "category", "subcategory", "concept", "media_type"):
        out[column] = _category(posts.get(column), n)
    width = _numeric(posts, "media_width")
    height = _numeric(posts, "media_height")
    out["media_width"] = width
    out["media_height"] = height
    with np.errstate(divide="ignore", invalid="ignore"):
        out["media_aspect_ratio"] = np.where(height > 0, width / height, np.nan)
    out["media_duration"] = _numeric(posts, "media_duration")
    out["music_duration"] = _numeric(posts, "music_duration")
    music = posts["music_title"] if "music_title" in posts else pd.Series([None] * n)
    out["music_is_original"] = (
        music.fillna("").astype(str).str.lower().str.startswith("original sound").to_numpy()
    )
    out["latitude"] = _numeric(posts, "latitude", non_negative=False)
    out["longitude"] = _numeric(posts, "longitude", non_negative=False)
    out["geo_accuracy"] = _numeric(posts, "geo_accuracy")
    # SMPD writes 0/0 for "no location": unknown, not the Gulf of Guinea.
    no_geo = (out["latitude"] == 0) & (out["longitude"] == 0)
    out.loc[no_geo, ["latitude", "longitude", "geo_accuracy"]] = np.nan
    return out


def compute_terms(posts: pd.DataFrame) -> pd.DataFrame:
    """The post's tags as a bag of terms (:func:`smp_platform.features.tags.tag_terms`)."""
    out = _keys(posts)
    out["tag_terms"] = [" ".join(tag_terms(v)) for v in posts["tags"]]
    return out


def compute_author_popularity(posts: pd.DataFrame, label_history: pd.DataFrame) -> pd.DataFrame:
    """Popularity of the author's strictly earlier labelled posts, per post of ``posts``.

    ``label_history`` is every post of the batch's authors (``post_id``, ``user_id``,
    ``posted_at``, ``popularity``, null when unlabelled), from
    :meth:`Warehouse.author_label_history`; a post never sees its own label or a later one.
    """
    history = label_history[["post_id", "user_id", "posted_at"]]
    labels = label_history.loc[label_history["popularity"].notna(), ["post_id", "popularity"]]
    known = compute_author_history(history, labels).set_index("post_id")
    out = _keys(posts)
    stats = known.reindex(out["post_id"])
    for name in AUTHOR_HISTORY_FIELDS:
        values = stats[name]
        out[name] = (
            values.fillna(0).astype("int64").to_numpy()
            if name == "author_labelled_prior_posts"
            else values.astype("float64").to_numpy()
        )
    return out
