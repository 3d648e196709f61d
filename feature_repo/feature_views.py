"""Feature views: names, dtypes, descriptions and groups. Everything else reads them from here.

Groups (the view tag ``group``; a refresh computes one group with one encoder):
- ``tabular`` (SQL/pandas, no model): ``post_author``, ``post_temporal``, ``post_content``,
  ``post_terms``, ``post_author_popularity`` (the author's earlier labels: the group's rows
  also depend on them);
- ``text``, ``image``, ``perplexity`` (models): one view each.

Every row also carries ``input_hash`` and ``encoder_id`` (for tabular views the code
version), added by the refresh, so a refresh recomputes exactly the rows whose inputs or encoder
changed. Every view's rows have ``post_id``, ``event_timestamp`` (the post's publication time:
the features are what was known then) and ``created_at`` (when the row was computed).

Dtypes are the small tokens of :class:`Dtype`; :func:`build_feature_views` maps them to Feast
types when the Feast objects are built, so importing a name never imports Feast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any


class Dtype(StrEnum):
    FLOAT64 = "float64"
    FLOAT32 = "float32"
    INT64 = "int64"
    STRING = "string"
    BOOL = "bool"
    FLOAT32_ARRAY = "float32[]"  # an embedding: one field, never 512 scalar columns

    @property
    def is_array(self) -> bool:
        return self is Dtype.FLOAT32_ARRAY

    @property
    def is_numeric(self) -> bool:
        return self in (Dtype.FLOAT64, Dtype.FLOAT32, Dtype.INT64)


class FieldKind(StrEnum):
    """How a model reads a field, where its dtype alone does not say (the Feast field tag
    ``kind``). A plain string is a category; a ``terms`` string is a bag of words the model
    weighs itself (TF-IDF + SVD fitted inside the registered model)."""

    TERMS = "terms"


@dataclass(frozen=True)
class FeatureField:
    name: str
    dtype: Dtype
    description: str = ""
    kind: FieldKind | None = None

    @property
    def tags(self) -> dict[str, str]:
        return {"kind": str(self.kind)} if self.kind else {}


@dataclass(frozen=True)
class ViewSpec:
    name: str
    group: str  # the feature group that computes it (view tag "group")
    description: str
    features: tuple[FeatureField, ...]
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def fields(self) -> tuple[FeatureField, ...]:
        """Features plus the bookkeeping fields every stored row carries."""
        return (*self.features, *BOOKKEEPING_FIELDS)


# ttl 0: a post's features never expire (Feast reads 0 as "no limit").
NO_EXPIRY = timedelta(0)
F64, F32, I64, STR, BOOL, EMB = (
    Dtype.FLOAT64,
    Dtype.FLOAT32,
    Dtype.INT64,
    Dtype.STRING,
    Dtype.BOOL,
    Dtype.FLOAT32_ARRAY,
)

INPUT_HASH = "input_hash"
ENCODER_ID = "encoder_id"
# Bookkeeping columns of every view (stored, never served to models).
BOOKKEEPING_FIELDS = (
    FeatureField(INPUT_HASH, STR, "hash of the inputs the row came from"),
    FeatureField(ENCODER_ID, STR, "model name + weights fingerprint (tabular: code version)"),
)

VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec(
        "post_author",
        "tabular",
        "Author statistics as of the post's time",
        (
            FeatureField("author_follower_count_log", F64, "log1p(followers)"),
            FeatureField("author_following_count_log", F64, "log1p(following)"),
            FeatureField("author_likes_count_log", F64, "log1p(likes received)"),
            FeatureField("author_post_count_log", F64, "log1p(posts/videos/photos)"),
            FeatureField("author_digg_count_log", F64, "log1p(likes given)"),
            FeatureField("author_friend_count_log", F64, "log1p(friends)"),
            FeatureField("author_likes_per_post_log", F64, "log1p(likes / posts)"),
            FeatureField(
                "author_follower_following_log_ratio", F64, "log1p(followers) - log1p(following)"
            ),
            FeatureField("author_is_pro", F64, "1 pro account, 0 not, null unknown"),
            FeatureField(
                "author_account_age_days",
                F64,
                "days from the author's first post (as reported) to this post",
            ),
            FeatureField(
                "author_prior_posts",
                I64,
                "posts by the same author in the warehouse published before this one",
            ),
            FeatureField(
                "author_days_since_previous_post",
                F64,
                "days since the author's previous post in the warehouse; null if none",
            ),
        ),
    ),
    ViewSpec(
        "post_temporal",
        "tabular",
        "When the post was published",
        (
            FeatureField("post_hour", I64, "hour of day, UTC"),
            FeatureField("post_weekday", I64, "0 = Monday"),
            FeatureField("post_month", I64),
            FeatureField("post_day_of_year", I64),
            FeatureField("post_epoch_days", F64, "days since 1970-01-01: the trend"),
        ),
    ),
    ViewSpec(
        "post_content",
        "tabular",
        "Text statistics, language, location, category and media metadata",
        (
            FeatureField("title_length", I64, "characters in the title / post text"),
            FeatureField("title_word_count", I64),
            FeatureField("title_hashtag_count", I64, "'#' tags in the title"),
            FeatureField("title_uppercase_ratio", F64),
            FeatureField("title_digit_count", I64),
            FeatureField("tag_count", I64, "SMPD Alltags / SMP-Video suggested words"),
            FeatureField("tags_length", I64),
            FeatureField("language", STR, "post text language; 'unknown' if missing"),
            FeatureField("location", STR, "country / place code; 'unknown' if missing"),
            FeatureField("category", STR),
            FeatureField("subcategory", STR),
            FeatureField("concept", STR),
            FeatureField("media_type", STR),
            FeatureField("media_width", F64),
            FeatureField("media_height", F64),
            FeatureField("media_aspect_ratio", F64, "width / height"),
            FeatureField("media_duration", F64, "seconds; null for photos"),
            FeatureField("music_duration", F64),
            FeatureField("music_is_original", BOOL, "'original sound' soundtrack"),
            FeatureField("latitude", F64),
            FeatureField("longitude", F64),
            FeatureField("geo_accuracy", F64),
        ),
    ),
    # A view of its own rather than a field of post_content: stored parquet parts keep their
    # schema (a new field in an existing view would not read beside the old parts).
    ViewSpec(
        "post_terms",
        "tabular",
        "The post's tags / suggested words as a bag of terms (weighed inside the model)",
        (
            FeatureField(
                "tag_terms",
                STR,
                "suggested words / tags, lower case, one token per tag (words joined by '_'), "
                "space separated, duplicates dropped",
                kind=FieldKind.TERMS,
            ),
        ),
    ),
    ViewSpec(
        "post_author_popularity",
        "tabular",
        "Popularity of the author's earlier posts, as known when the post was published",
        (
            FeatureField(
                "author_labelled_prior_posts",
                I64,
                "labelled posts by the same author published strictly before this one",
            ),
            FeatureField(
                "author_popularity_mean", F64, "mean popularity of those posts; null if none"
            ),
            FeatureField(
                "author_popularity_max", F64, "highest popularity of those posts; null if none"
            ),
            FeatureField(
                "author_popularity_last",
                F64,
                "popularity of the latest of them (mean if several at that instant); null if none",
            ),
        ),
    ),
    ViewSpec(
        "post_text_semantics",
        "text",
        "Sentence embedding of the post text and text-side similarities",
        (
            FeatureField("text_embedding", EMB, "sentence embedding of the post text (unit norm)"),
            FeatureField(
                "text_tags_similarity",
                F64,
                "cosine(title/post text, tags/suggested words); null when no tags",
            ),
            FeatureField(
                "caption_title_similarity",
                F64,
                "cosine(generated caption, title); null without captions",
            ),
        ),
    ),
    ViewSpec(
        "post_image_semantics",
        "image",
        "CLIP image embedding and image-title (in)consistency",
        (
            FeatureField("image_embedding", EMB, "CLIP image embedding (unit norm)"),
            FeatureField(
                "image_title_similarity",
                F64,
                "cosine(CLIP image, CLIP text of the title): the inconsistency signal",
            ),
        ),
    ),
    ViewSpec(
        "post_perplexity",
        "perplexity",
        "Perplexity of the post text under a causal language model",
        (
            FeatureField("perplexity", F64, "perplexity of the post text under a causal LM"),
            FeatureField("log_perplexity", F64),
            FeatureField("text_token_count", I64, "LM tokens scored (bounded)"),
        ),
    ),
)

# Groups a post's own fields compute at request time (drafts, pushed posts): their views read
# through a PushSource. The image group needs the media file, which a pushed post has none of.
PUSHED_GROUPS = ("tabular", "text", "perplexity")
PUSHED_VIEWS: tuple[str, ...] = tuple(v.name for v in VIEWS if v.group in PUSHED_GROUPS)

VIEW_SPECS: dict[str, ViewSpec] = {view.name: view for view in VIEWS}
# Every stored field of each view (features + bookkeeping), in declaration order.
VIEW_FIELDS: dict[str, tuple[FeatureField, ...]] = {v.name: v.fields for v in VIEWS}
DTYPES: dict[str, Dtype] = {f.name: f.dtype for v in VIEWS for f in v.features}
# Fields whose dtype alone does not say how a model reads them (e.g. terms strings).
KINDS: dict[str, FieldKind] = {f.name: f.kind for v in VIEWS for f in v.features if f.kind}
# The view each feature belongs to (names are unique across views).
FEATURE_VIEW: dict[str, str] = {f.name: v.name for v in VIEWS for f in v.features}


def feature_names(view_name: str, *, include_bookkeeping: bool = False) -> list[str]:
    """Feature column names of a view, in declaration order."""
    view = VIEW_SPECS[view_name]
    fields = view.fields if include_bookkeeping else view.features
    return [f.name for f in fields]


def groups() -> dict[str, tuple[str, ...]]:
    """Feature group -> its views, from the views' ``group`` tags, in declaration order."""
    out: dict[str, tuple[str, ...]] = {}
    for view in VIEWS:
        out[view.group] = (*out.get(view.group, ()), view.name)
    return out


def group_views(group: str) -> tuple[str, ...]:
    return groups()[group]


def embedding_columns(group: str | None = None) -> list[str]:
    """Array-typed features (embeddings), optionally of one group's views only."""
    return [
        f.name
        for v in VIEWS
        if group is None or v.group == group
        for f in v.features
        if f.dtype.is_array
    ]


# -- Feast objects, built only when called ---------------------------------------------------
def feast_type(dtype: Dtype) -> Any:
    from feast.types import Array, Bool, Float32, Float64, Int64, String

    scalar = {
        Dtype.FLOAT64: Float64,
        Dtype.FLOAT32: Float32,
        Dtype.INT64: Int64,
        Dtype.STRING: String,
        Dtype.BOOL: Bool,
    }
    return Array(Float32) if dtype.is_array else scalar[dtype]


def build_feature_views(offline_dir: Path, entity: Any) -> dict[str, Any]:
    """The Feast ``FeatureView`` of every view spec, sources under ``offline_dir``."""
    from feast import FeatureView, Field

    from feature_repo.data_sources import file_source, push_source

    return {
        view.name: FeatureView(
            name=view.name,
            entities=[entity],
            ttl=NO_EXPIRY,
            schema=[
                Field(
                    name=f.name, dtype=feast_type(f.dtype), description=f.description, tags=f.tags
                )
                for f in view.fields
            ],
            source=push_source(offline_dir, view.name)
            if view.name in PUSHED_VIEWS
            else file_source(offline_dir, view.name),
            online=True,
            description=view.description,
            tags={"group": view.group, **view.tags},
        )
        for view in VIEWS
    }
