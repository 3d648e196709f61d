"""Feature views: names, dtypes, descriptions. Everything else reads them from here.

Groups:
- tabular (SQL/pandas, no model): ``post_author``, ``post_temporal``, ``post_content``;
- multimodal (models): ``post_text_semantics``, ``post_image_semantics``, ``post_perplexity``.

Every row also carries ``input_hash`` and ``encoder_id`` (for tabular views the code
version), so a refresh recomputes exactly the rows whose inputs or encoder changed.

Every view's rows have ``post_id``, ``event_timestamp`` (the post's publication time: the
features are what was known then) and ``created_at`` (when the row was computed; Feast keeps the
latest for a given event time).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feast import FeatureView, Field
from feast.types import Array, Bool, Float32, Float64, Int64, String

from feature_repo.data_sources import default_offline_dir, file_source
from feature_repo.entities import post

# ttl 0: a post's features never expire (Feast reads 0 as "no limit").
NO_EXPIRY = timedelta(0)

# Bookkeeping columns of every view (not served to models).
CACHE_FIELDS = [
    Field(name="input_hash", dtype=String, description="hash of the inputs the row came from"),
    Field(name="encoder_id", dtype=String, description="model name + weights fingerprint"),
]

AUTHOR_FIELDS = [
    Field(name="author_follower_count_log", dtype=Float64, description="log1p(followers)"),
    Field(name="author_following_count_log", dtype=Float64, description="log1p(following)"),
    Field(name="author_likes_count_log", dtype=Float64, description="log1p(likes received)"),
    Field(name="author_post_count_log", dtype=Float64, description="log1p(posts/videos/photos)"),
    Field(name="author_digg_count_log", dtype=Float64, description="log1p(likes given)"),
    Field(name="author_friend_count_log", dtype=Float64, description="log1p(friends)"),
    Field(name="author_likes_per_post_log", dtype=Float64, description="log1p(likes / posts)"),
    Field(
        name="author_follower_following_log_ratio",
        dtype=Float64,
        description="log1p(followers) - log1p(following)",
    ),
    Field(name="author_is_pro", dtype=Float64, description="1 pro account, 0 not, null unknown"),
    Field(
        name="author_account_age_days",
        dtype=Float64,
        description="days from the author's first post (as reported) to this post",
    ),
    Field(
        name="author_prior_posts",
        dtype=Int64,
        description="posts by the same author in the warehouse published before this one",
    ),
    Field(
        name="author_days_since_previous_post",
        dtype=Float64,
        description="days since the author's previous post in the warehouse; null if none",
    ),
    *CACHE_FIELDS,
]

TEMPORAL_FIELDS = [
    Field(name="post_hour", dtype=Int64, description="hour of day, UTC"),
    Field(name="post_weekday", dtype=Int64, description="0 = Monday"),
    Field(name="post_month", dtype=Int64),
    Field(name="post_day_of_year", dtype=Int64),
    Field(name="post_epoch_days", dtype=Float64, description="days since 1970-01-01: the trend"),
    *CACHE_FIELDS,
]

CONTENT_FIELDS = [
    Field(name="title_length", dtype=Int64, description="characters in the title / post text"),
    Field(name="title_word_count", dtype=Int64),
    Field(name="title_hashtag_count", dtype=Int64, description="'#' tags in the title"),
    Field(name="title_uppercase_ratio", dtype=Float64),
    Field(name="title_digit_count", dtype=Int64),
    Field(name="tag_count", dtype=Int64, description="SMPD Alltags / SMP-Video suggested words"),
    Field(name="tags_length", dtype=Int64),
    Field(name="language", dtype=String, description="post text language; 'unknown' if missing"),
    Field(name="location", dtype=String, description="country / place code; 'unknown' if missing"),
    Field(name="category", dtype=String),
    Field(name="subcategory", dtype=String),
    Field(name="concept", dtype=String),
    Field(name="media_type", dtype=String),
    Field(name="media_width", dtype=Float64),
    Field(name="media_height", dtype=Float64),
    Field(name="media_aspect_ratio", dtype=Float64, description="width / height"),
    Field(name="media_duration", dtype=Float64, description="seconds; null for photos"),
    Field(name="music_duration", dtype=Float64),
    Field(name="music_is_original", dtype=Bool, description="'original sound' soundtrack"),
    Field(name="latitude", dtype=Float64),
    Field(name="longitude", dtype=Float64),
    Field(name="geo_accuracy", dtype=Float64),
    *CACHE_FIELDS,
]

TEXT_SEMANTICS_FIELDS = [
    Field(
        name="text_embedding",
        dtype=Array(Float32),
        description="sentence embedding of the post text (unit norm)",
    ),
    Field(
        name="text_tags_similarity",
        dtype=Float64,
        description="cosine(title/post text, tags/suggested words); null when no tags",
    ),
    Field(
        name="caption_title_similarity",
        dtype=Float64,
        description="cosine(generated caption, title); null without captions",
    ),
    *CACHE_FIELDS,
]

IMAGE_SEMANTICS_FIELDS = [
    Field(
        name="image_embedding", dtype=Array(Float32), description="CLIP image embedding (unit norm)"
    ),
    Field(
        name="image_title_similarity",
        dtype=Float64,
        description="cosine(CLIP image, CLIP text of the title): the inconsistency signal",
    ),
    *CACHE_FIELDS,
]

PERPLEXITY_FIELDS = [
    Field(
        name="perplexity",
        dtype=Float64,
        description="perplexity of the post text under a causal LM",
    ),
    Field(name="log_perplexity", dtype=Float64),
    Field(name="text_token_count", dtype=Int64, description="LM tokens scored (bounded)"),
    *CACHE_FIELDS,
]

VIEW_FIELDS: dict[str, list[Field]] = {
    "post_author": AUTHOR_FIELDS,
    "post_temporal": TEMPORAL_FIELDS,
    "post_content": CONTENT_FIELDS,
    "post_text_semantics": TEXT_SEMANTICS_FIELDS,
    "post_image_semantics": IMAGE_SEMANTICS_FIELDS,
    "post_perplexity": PERPLEXITY_FIELDS,
}

TABULAR_VIEWS = ("post_author", "post_temporal", "post_content")
MODEL_VIEWS = ("post_text_semantics", "post_image_semantics", "post_perplexity")

VIEW_DESCRIPTIONS = {
    "post_author": "Author statistics as of the post's time",
    "post_temporal": "When the post was published",
    "post_content": "Text statistics, language, location, category and media metadata",
    "post_text_semantics": "Sentence embedding of the post text and text-side similarities",
    "post_image_semantics": "CLIP image embedding and image-title (in)consistency",
    "post_perplexity": "Perplexity of the post text under a causal language model",
}


def feature_names(view_name: str, *, include_cache: bool = False) -> list[str]:
    """Feature column names of a view, in declaration order."""
    cache = {f.name for f in CACHE_FIELDS}
    return [f.name for f in VIEW_FIELDS[view_name] if include_cache or f.name not in cache]


def build_feature_views(offline_dir: Path) -> dict[str, FeatureView]:
    return {
        name: FeatureView(
            name=name,
            entities=[post],
            ttl=NO_EXPIRY,
            schema=fields,
            source=file_source(offline_dir, name),
            online=True,
            description=VIEW_DESCRIPTIONS[name],
            tags={"group": "tabular" if name in TABULAR_VIEWS else "model"},
        )
        for name, fields in VIEW_FIELDS.items()
    }


_views = build_feature_views(default_offline_dir())
post_author = _views["post_author"]
post_temporal = _views["post_temporal"]
post_content = _views["post_content"]
post_text_semantics = _views["post_text_semantics"]
post_image_semantics = _views["post_image_semantics"]
post_perplexity = _views["post_perplexity"]
