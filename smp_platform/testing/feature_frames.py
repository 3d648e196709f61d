"""Synthetic training frames with the real served feature columns, for tests and smoke runs.

Popularity depends on the author, the category, the image-title similarity, the perplexity and
a latent "appeal" that only the embeddings carry (along one direction), plus noise. Not data:
nothing here says anything about real posts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from smp_platform.core.config import DEFAULT_FEATURE_SERVICE, Settings
from smp_platform.features.registry import FeatureGroups, groups_for
from smp_platform.modeling.matrix import FeatureSpec, feature_kinds

EMBEDDING_DIM = 384
CATEGORIES = ("travel", "food", "pets", "sport", "art")
COMMON_TERMS = ("fyp", "viral", "funny", "love", "music", "trend")
CATEGORY_EFFECT = {"travel": 0.4, "food": 0.1, "pets": 0.6, "sport": -0.2, "art": -0.4}


def builtin_groups() -> FeatureGroups:
    """The built-in feature groups (no group of a user's own)."""
    return groups_for(Settings())


def served_feature_columns(feature_service: str = DEFAULT_FEATURE_SERVICE) -> list[str]:
    """The feature columns a feature service of the built-in groups serves."""
    return builtin_groups().service(feature_service).columns


def served_spec(columns: Sequence[str] | None = None) -> FeatureSpec:
    """``columns`` (default: the default feature service's) by the kind a model reads them."""
    return feature_kinds(list(columns or served_feature_columns()), builtin_groups().fields)


def _embeddings(
    rng: np.random.Generator, appeal: np.ndarray, dim: int, direction_seed: int, missing: float
) -> list[np.ndarray | None]:
    """Unit vectors that carry ``appeal`` along one direction; a ``missing`` share are None."""
    n = len(appeal)
    direction = np.random.default_rng(direction_seed).normal(size=dim)
    direction /= np.linalg.norm(direction)
    raw = rng.normal(size=(n, dim)) + 6.0 * appeal[:, None] * direction[None, :]
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    absent = rng.random(n) < missing
    return [None if m else row.astype(np.float32) for m, row in zip(absent, raw, strict=True)]


def synthetic_frame(
    n: int = 300, *, seed: int = 0, dim: int = EMBEDDING_DIM, missing_embeddings: float = 0.05
) -> pd.DataFrame:
    """A training frame (post_id, event_timestamp, popularity, every popularity_v1 feature)."""
    rng = np.random.default_rng(seed)
    appeal = rng.normal(size=n)
    author = rng.normal(size=n)
    category = rng.choice(CATEGORIES, size=n)
    log_perplexity = rng.normal(3.0, 0.5, size=n)
    image_title_similarity = np.clip(0.25 + 0.08 * rng.normal(size=n), -1, 1)
    popularity = (
        4.0
        + 0.9 * author
        + 0.8 * appeal
        + np.vectorize(CATEGORY_EFFECT.get)(category)
        + 2.0 * (image_title_similarity - 0.25)
        - 0.3 * (log_perplexity - 3.0)
        + 0.4 * rng.normal(size=n)
    )

    def embeddings(direction_seed: int) -> list[np.ndarray | None]:
        return _embeddings(rng, appeal, dim, direction_seed, missing_embeddings)

    start = pd.Timestamp("2024-01-01", tz="UTC")
    posted = start + pd.to_timedelta(np.sort(rng.uniform(0, 300, size=n)), unit="D")
    hours = posted.hour.to_numpy()
    prior_labelled = np.where(rng.random(n) < 0.7, 0, rng.integers(1, 6, size=n))
    frame = pd.DataFrame(
        {
            "post_id": [f"p{i:05d}" for i in range(n)],
            "event_timestamp": posted,
            "popularity": popularity,
            "author_follower_count_log": 5.0 + 1.5 * author,
            "author_following_count_log": rng.normal(5.0, 1.0, size=n),
            "author_likes_count_log": 6.0 + 1.2 * author + 0.3 * rng.normal(size=n),
            "author_post_count_log": rng.normal(4.0, 1.0, size=n),
            "author_digg_count_log": rng.normal(3.0, 1.0, size=n),
            "author_friend_count_log": rng.normal(2.0, 1.0, size=n),
            "author_likes_per_post_log": rng.normal(2.0, 0.5, size=n),
            "author_follower_following_log_ratio": rng.normal(0.0, 1.0, size=n),
            "author_is_pro": rng.choice([0.0, 1.0, np.nan], size=n),
            "author_account_age_days": rng.uniform(10, 3000, size=n),
            "author_prior_posts": rng.integers(0, 50, size=n),
            "author_days_since_previous_post": np.where(
                rng.random(n) < 0.1, np.nan, rng.exponential(5.0, size=n)
            ),
            "post_hour": hours,
            "post_weekday": posted.weekday.to_numpy(),
            "post_month": posted.month.to_numpy(),
            "post_day_of_year": posted.dayofyear.to_numpy(),
            "post_epoch_days": (posted - pd.Timestamp("1970-01-01", tz="UTC"))
            .days.to_numpy()
            .astype(float),
            "title_length": rng.integers(0, 200, size=n),
            "title_word_count": rng.integers(0, 40, size=n),
            "title_hashtag_count": rng.integers(0, 8, size=n),
            "title_uppercase_ratio": rng.uniform(0, 0.3, size=n),
            "title_digit_count": rng.integers(0, 5, size=n),
            "tag_count": rng.integers(0, 20, size=n),
            "tags_length": rng.integers(0, 300, size=n),
            # a category's own words plus common ones: the terms carry the category effect
            "tag_terms": [
                " ".join([c, f"{c}_{rng.integers(0, 3)}", *rng.choice(COMMON_TERMS, size=2)])
                for c in category
            ],
            "language": rng.choice(["en", "es", "unknown"], size=n),
            "location": rng.choice(["US", "GB", "unknown"], size=n),
            "category": category,
            "subcategory": [f"{c}-{rng.integers(0, 3)}" for c in category],
            "concept": rng.choice(["a", "b", "c", "d"], size=n),
            "media_type": rng.choice(["photo", "video"], size=n),
            "media_width": rng.choice([640.0, 1080.0, 1920.0], size=n),
            "media_height": rng.choice([480.0, 1080.0, 1920.0], size=n),
            "media_aspect_ratio": rng.uniform(0.5, 2.0, size=n),
            "media_duration": np.where(rng.random(n) < 0.5, np.nan, rng.uniform(5, 60, size=n)),
            "music_duration": rng.uniform(5, 60, size=n),
            "music_is_original": rng.choice(np.array([True, False, None], dtype=object), size=n),
            "latitude": rng.uniform(-60, 60, size=n),
            "longitude": rng.uniform(-180, 180, size=n),
            "geo_accuracy": rng.integers(1, 16, size=n).astype(float),
            "author_labelled_prior_posts": prior_labelled,
            "author_popularity_mean": np.where(
                prior_labelled > 0, popularity - 0.3 * rng.normal(size=n), np.nan
            ),
            "author_popularity_max": np.where(prior_labelled > 0, popularity + 0.5, np.nan),
            "author_popularity_last": np.where(
                prior_labelled > 0, popularity + rng.normal(size=n), np.nan
            ),
            "text_embedding": embeddings(1),
            "text_tags_similarity": rng.uniform(0.0, 0.8, size=n),
            # no captioner configured: null on every post, as in the embedded default
            "caption_title_similarity": [None] * n,
            "image_embedding": embeddings(2),
            "image_title_similarity": image_title_similarity,
            "perplexity": np.exp(log_perplexity),
            "log_perplexity": log_perplexity,
            "text_token_count": rng.integers(1, 128, size=n),
        }
    )
    return frame
