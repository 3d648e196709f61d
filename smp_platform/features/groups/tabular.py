"""The tabular group: who posted, when, what the text and the media look like, the tags as
terms, and the popularity of the author's earlier posts. SQL and pandas, no model.

Many author, media and geo fields exist in one dataset and not the other (SMPD has no follower
counts, SMP-Video no geo or categories): their rules allow a fully null batch.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from smp_platform.core.config import DEFAULT_FEATURE_SERVICE
from smp_platform.features import tabular
from smp_platform.features.group import AblationStage, FeatureGroup, FeatureInputs, Input
from smp_platform.features.schema import (
    NON_NEGATIVE,
    OPTIONAL,
    OPTIONAL_NON_NEGATIVE,
    REQUIRED,
    Dtype,
    Field,
    FieldKind,
    Rule,
    View,
)

F64, I64, STR, BOOL = Dtype.FLOAT64, Dtype.INT64, Dtype.STRING, Dtype.BOOL

AUTHOR = View(
    "post_author",
    "Author statistics as of the post's time",
    (
        Field("author_follower_count_log", F64, "log1p(followers)", rule=OPTIONAL_NON_NEGATIVE),
        Field("author_following_count_log", F64, "log1p(following)", rule=OPTIONAL_NON_NEGATIVE),
        Field("author_likes_count_log", F64, "log1p(likes received)", rule=OPTIONAL_NON_NEGATIVE),
        Field("author_post_count_log", F64, "log1p(posts/videos/photos)", rule=NON_NEGATIVE),
        Field("author_digg_count_log", F64, "log1p(likes given)", rule=OPTIONAL_NON_NEGATIVE),
        Field("author_friend_count_log", F64, "log1p(friends)", rule=OPTIONAL_NON_NEGATIVE),
        Field("author_likes_per_post_log", F64, "log1p(likes / posts)", rule=OPTIONAL_NON_NEGATIVE),
        Field(
            "author_follower_following_log_ratio",
            F64,
            "log1p(followers) - log1p(following)",
            rule=OPTIONAL,
        ),
        Field(
            "author_is_pro",
            F64,
            "1 pro account, 0 not, null unknown",
            rule=Rule(value_set=(0.0, 1.0), max_null_fraction=1.0),
        ),
        # "as reported": clocks disagree, so the sign is not checked
        Field(
            "author_account_age_days",
            F64,
            "days from the author's first post (as reported) to this post",
            rule=OPTIONAL,
        ),
        Field(
            "author_prior_posts",
            I64,
            "posts by the same author in the warehouse published before this one",
            rule=Rule(min_value=0, max_null_fraction=0.0),
        ),
        # null for an author's first post in the warehouse, which can be most posts
        Field(
            "author_days_since_previous_post",
            F64,
            "days since the author's previous post in the warehouse; null if none",
            rule=OPTIONAL_NON_NEGATIVE,
        ),
    ),
    optional=False,
)
TEMPORAL = View(
    "post_temporal",
    "When the post was published",
    (
        Field("post_hour", I64, "hour of day, UTC", rule=Rule(0, 23, max_null_fraction=0.0)),
        Field("post_weekday", I64, "0 = Monday", rule=Rule(0, 6, max_null_fraction=0.0)),
        Field("post_month", I64, rule=Rule(1, 12, max_null_fraction=0.0)),
        Field("post_day_of_year", I64, rule=Rule(1, 366, max_null_fraction=0.0)),
        Field("post_epoch_days", F64, "days since 1970-01-01: the trend", rule=REQUIRED),
    ),
    optional=False,
    publication_time=True,
)
CONTENT = View(
    "post_content",
    "Text statistics, language, location, category and media metadata",
    (
        Field("title_length", I64, "characters in the title / post text", rule=NON_NEGATIVE),
        Field("title_word_count", I64, rule=NON_NEGATIVE),
        Field("title_hashtag_count", I64, "'#' tags in the title", rule=NON_NEGATIVE),
        Field("title_uppercase_ratio", F64, rule=Rule(min_value=0, max_value=1)),
        Field("title_digit_count", I64, rule=NON_NEGATIVE),
        Field("tag_count", I64, "SMPD Alltags / SMP-Video suggested words", rule=NON_NEGATIVE),
        Field("tags_length", I64, rule=NON_NEGATIVE),
        Field("language", STR, "post text language; 'unknown' if missing"),
        Field("location", STR, "country / place code; 'unknown' if missing"),
        Field("category", STR, rule=OPTIONAL),
        Field("subcategory", STR, rule=OPTIONAL),
        Field("concept", STR, rule=OPTIONAL),
        Field("media_type", STR, rule=OPTIONAL),
        Field("media_width", F64, rule=OPTIONAL_NON_NEGATIVE),
        Field("media_height", F64, rule=OPTIONAL_NON_NEGATIVE),
        Field("media_aspect_ratio", F64, "width / height", rule=OPTIONAL_NON_NEGATIVE),
        Field("media_duration", F64, "seconds; null for photos", rule=OPTIONAL_NON_NEGATIVE),
        Field("music_duration", F64, rule=OPTIONAL_NON_NEGATIVE),
        Field("music_is_original", BOOL, "'original sound' soundtrack", rule=OPTIONAL),
        Field("latitude", F64, rule=Rule(min_value=-90, max_value=90, max_null_fraction=1.0)),
        Field("longitude", F64, rule=Rule(min_value=-180, max_value=180, max_null_fraction=1.0)),
        Field("geo_accuracy", F64, rule=OPTIONAL_NON_NEGATIVE),
    ),
    optional=False,
)
# A view of its own rather than a field of post_content: stored parquet parts keep their
# schema (a new field in an existing view would not read beside the old parts).
TERMS = View(
    "post_terms",
    "The post's tags / suggested words as a bag of terms (weighed inside the model)",
    (
        Field(
            "tag_terms",
            STR,
            "suggested words / tags, lower case, one token per tag (words joined by '_'), "
            "space separated, duplicates dropped",
            kind=FieldKind.TERMS,
            rule=REQUIRED,  # "" when a post has no tags, never null
        ),
    ),
)
# null while the author has no earlier labelled post: most posts of a fresh stream
AUTHOR_POPULARITY = View(
    "post_author_popularity",
    "Popularity of the author's earlier posts, as known when the post was published",
    (
        Field(
            "author_labelled_prior_posts",
            I64,
            "labelled posts by the same author published strictly before this one",
            rule=Rule(min_value=0, max_null_fraction=0.0),
        ),
        Field(
            "author_popularity_mean",
            F64,
            "mean popularity of those posts; null if none",
            rule=OPTIONAL,
        ),
        Field(
            "author_popularity_max",
            F64,
            "highest popularity of those posts; null if none",
            rule=OPTIONAL,
        ),
        Field(
            "author_popularity_last",
            F64,
            "popularity of the latest of them (mean if several at that instant); null if none",
            rule=OPTIONAL,
        ),
    ),
)


def compute(inputs: FeatureInputs, model: Any) -> dict[str, pd.DataFrame]:
    posts = inputs.posts
    assert inputs.author_history is not None and inputs.label_history is not None
    return {
        AUTHOR.name: tabular.compute_author_features(posts, inputs.author_history),
        TEMPORAL.name: tabular.compute_temporal_features(posts),
        CONTENT.name: tabular.compute_content_features(posts),
        TERMS.name: tabular.compute_terms(posts),
        AUTHOR_POPULARITY.name: tabular.compute_author_popularity(posts, inputs.label_history),
    }


group = FeatureGroup(
    name="tabular",
    description="author, time, text statistics, category, media and geo; tags as terms; the "
    "author's earlier popularity",
    views=(AUTHOR, TEMPORAL, CONTENT, TERMS, AUTHOR_POPULARITY),
    compute=compute,
    reads=frozenset({Input.POST, Input.AUTHOR_PROFILE, Input.AUTHOR_HISTORY, Input.LABEL_HISTORY}),
    # Bump when a feature's definition changes: every tabular row is then recomputed.
    # v2: the post_terms and post_author_popularity views.
    version="tabular-v2",
    services=(DEFAULT_FEATURE_SERVICE, "popularity_tabular_v1"),
    ablation=(
        AblationStage(
            0,
            "tabular",
            features=(*AUTHOR.feature_names, *TEMPORAL.feature_names, *CONTENT.feature_names),
        ),
        AblationStage(70, "+ tag terms", features=tuple(TERMS.feature_names)),
        AblationStage(80, "+ author popularity", features=tuple(AUTHOR_POPULARITY.feature_names)),
    ),
)
