"""Great Expectations suites on hand-made feature batches (real GE, no mocks)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smp_platform.testing.feature_frames import builtin_groups
from smp_platform.validation import ValidationReport
from smp_platform.validation import validate_batch as validate_view

GROUPS = builtin_groups()
VIEW_FIELDS = {view.name: view.stored_fields for view in GROUPS.views}


def validate_batch(view_name: str, frame: pd.DataFrame, **options: object) -> ValidationReport:
    """The batch validated against the built-in view of that name (the registry says when
    there is none)."""
    return validate_view(GROUPS.view(view_name), frame, **options)  # type: ignore[arg-type]


pytestmark = pytest.mark.integration

N_ROWS = 8
DIM = 16


def _unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [list(v) for v in vectors]


def _base(n: int = N_ROWS) -> dict[str, object]:
    return {
        "post_id": [f"p{i}" for i in range(n)],
        "event_timestamp": pd.date_range("2023-07-01", periods=n, freq="7h"),
        "created_at": pd.Timestamp("2024-01-01"),
    }


def _cache(n: int = N_ROWS) -> dict[str, object]:
    return {"input_hash": [f"h{i}" for i in range(n)], "encoder_id": "test-encoder@0123abcd"}


def good_batch(view_name: str, n: int = N_ROWS) -> pd.DataFrame:
    """A plausible batch of ``view_name``: every declared field, every value in range."""
    rows = np.arange(n)
    columns: dict[str, dict[str, object]] = {
        "post_author": {
            "author_follower_count_log": np.log1p(rows * 10.0),
            "author_following_count_log": np.log1p(rows * 3.0),
            "author_likes_count_log": np.log1p(rows * 100.0),
            "author_post_count_log": np.log1p(rows + 1.0),
            "author_digg_count_log": [None] * n,  # this source has no likes-given count
            "author_friend_count_log": np.log1p(rows),
            "author_likes_per_post_log": np.log1p(rows * 2.0),
            "author_follower_following_log_ratio": np.log1p(rows * 10.0) - np.log1p(rows * 3.0),
            "author_is_pro": [1.0, 0.0] * (n // 2),
            "author_account_age_days": rows * 30.5,
            "author_prior_posts": rows,
            "author_days_since_previous_post": [None] + [1.5] * (n - 1),
        },
        "post_temporal": {
            "post_hour": (rows * 7) % 24,
            "post_weekday": rows % 7,
            "post_month": rows % 12 + 1,
            "post_day_of_year": (rows * 40) % 366 + 1,
            "post_epoch_days": 19539.0 + rows * 0.3,
        },
        "post_content": {
            "title_length": rows * 10,
            "title_word_count": rows * 2,
            "title_hashtag_count": rows % 3,
            "title_uppercase_ratio": rows / n,
            "title_digit_count": rows % 2,
            "tag_count": rows,
            "tags_length": rows * 8,
            "language": "en",
            "location": ["US", "CA"] * (n // 2),
            "category": [None] * n,
            "subcategory": [None] * n,
            "concept": [None] * n,
            "media_type": "video",
            "media_width": 720.0,
            "media_height": 1280.0,
            "media_aspect_ratio": 0.5625,
            "media_duration": 15.0 + rows,
            "music_duration": 30.0,
            "music_is_original": [True, False] * (n // 2),
            "latitude": [None] * (n - 2) + [43.6, -33.9],
            "longitude": [None] * (n - 2) + [-79.4, 151.2],
            "geo_accuracy": [None] * (n - 2) + [16.0, 11.0],
        },
        "post_terms": {
            "tag_terms": ["cute_bird funny", ""] * (n // 2),  # "" for a post without tags
        },
        "post_author_popularity": {
            "author_labelled_prior_posts": rows % 3,
            # null while no earlier label is known
            "author_popularity_mean": [None if r % 3 == 0 else 4.5 for r in rows],
            "author_popularity_max": [None if r % 3 == 0 else 7.0 for r in rows],
            "author_popularity_last": [None if r % 3 == 0 else 3.25 for r in rows],
        },
        "post_text_semantics": {
            "text_embedding": _unit_vectors(n),
            "text_tags_similarity": [None] + [0.25] * (n - 2) + [1.00001],  # float32 rounding
            "caption_title_similarity": [None] * n,  # no captioner configured
        },
        "post_image_semantics": {
            "image_embedding": _unit_vectors(n, seed=1),
            "image_title_similarity": np.linspace(-0.2, 0.4, n),
        },
        "post_perplexity": {
            "perplexity": 12.0 + rows,
            "log_perplexity": np.log(12.0 + rows),
            "text_token_count": rows + 3,
        },
    }
    frame = pd.DataFrame({**_base(n), **columns[view_name], **_cache(n)})
    assert set(frame.columns) >= {f.name for f in VIEW_FIELDS[view_name]}
    return frame


@pytest.mark.parametrize("view_name", sorted(VIEW_FIELDS))
def test_a_good_batch_passes(view_name: str) -> None:
    report = validate_batch(view_name, good_batch(view_name))
    assert report.success, report.summary()
    assert report.failures == []
    assert report.n_rows == N_ROWS


def _failed(report, expectation: str, column: str):
    assert not report.success
    matches = [f for f in report.failures if f.expectation == expectation and f.column == column]
    assert matches, f"no {expectation}({column}) in: {report.summary()}"
    return matches[0]


@pytest.mark.parametrize(
    ("view_name", "column", "bad_value", "expectation", "checked_column"),
    [
        ("post_temporal", "post_hour", 25, "expect_column_values_to_be_between", "post_hour"),
        ("post_temporal", "post_weekday", -1, "expect_column_values_to_be_between", "post_weekday"),
        ("post_temporal", "post_month", 13, "expect_column_values_to_be_between", "post_month"),
        (
            "post_temporal",
            "post_epoch_days",
            math.inf,
            "expect_column_values_to_be_in_set",
            "post_epoch_days__finite",
        ),
        (
            "post_author",
            "author_account_age_days",
            -math.inf,
            "expect_column_values_to_be_in_set",
            "author_account_age_days__finite",
        ),
        (
            "post_author",
            "author_follower_count_log",
            -0.5,
            "expect_column_values_to_be_between",
            "author_follower_count_log",
        ),
        ("post_content", "latitude", 91.0, "expect_column_values_to_be_between", "latitude"),
        ("post_content", "longitude", -181.0, "expect_column_values_to_be_between", "longitude"),
        (
            "post_content",
            "title_uppercase_ratio",
            1.5,
            "expect_column_values_to_be_between",
            "title_uppercase_ratio",
        ),
        ("post_content", "media_width", -1.0, "expect_column_values_to_be_between", "media_width"),
        ("post_perplexity", "perplexity", 0.5, "expect_column_values_to_be_between", "perplexity"),
        ("post_perplexity", "perplexity", 1.0, "expect_column_values_to_be_between", "perplexity"),
        (
            "post_perplexity",
            "text_token_count",
            -2,
            "expect_column_values_to_be_between",
            "text_token_count",
        ),
        (
            "post_text_semantics",
            "text_tags_similarity",
            1.7,
            "expect_column_values_to_be_between",
            "text_tags_similarity",
        ),
        (
            "post_image_semantics",
            "image_title_similarity",
            -1.2,
            "expect_column_values_to_be_between",
            "image_title_similarity",
        ),
        (
            "post_author_popularity",
            "author_labelled_prior_posts",
            -1,
            "expect_column_values_to_be_between",
            "author_labelled_prior_posts",
        ),
        (
            "post_author_popularity",
            "author_popularity_mean",
            math.inf,
            "expect_column_values_to_be_in_set",
            "author_popularity_mean__finite",
        ),
        (
            "post_terms",
            "tag_terms",
            None,
            "expect_column_values_to_not_be_null",
            "tag_terms",
        ),
    ],
)
def test_a_bad_value_fails_naming_the_expectation_and_the_post(
    view_name: str, column: str, bad_value: float, expectation: str, checked_column: str
) -> None:
    frame = good_batch(view_name)
    frame[column] = frame[column].astype("object" if bad_value is None else "float64")
    frame.loc[3, column] = bad_value
    report = validate_batch(view_name, frame)
    failure = _failed(report, expectation, checked_column)
    assert failure.post_ids == ["p3"]
    assert failure.unexpected_count == 1
    assert "p3" in report.summary()
    assert report.summary().startswith(f"{view_name}: ")


def test_inf_in_a_bounded_column_fails_both_range_and_finiteness() -> None:
    frame = good_batch("post_content")
    frame["latitude"] = frame["latitude"].astype("float64")
    frame.loc[5, "latitude"] = math.inf
    report = validate_batch("post_content", frame)
    assert _failed(report, "expect_column_values_to_be_in_set", "latitude__finite").post_ids == [
        "p5"
    ]
    assert _failed(report, "expect_column_values_to_be_between", "latitude").post_ids == ["p5"]


def test_an_embedding_of_the_wrong_dimension_fails() -> None:
    frame = good_batch("post_text_semantics")
    frame.at[2, "text_embedding"] = _unit_vectors(1, dim=DIM + 1)[0]
    report = validate_batch("post_text_semantics", frame)
    failure = _failed(report, "expect_column_values_to_be_between", "text_embedding__dim")
    assert failure.post_ids == ["p2"]


def test_the_expected_dimension_comes_from_the_caller_when_given() -> None:
    frame = good_batch("post_image_semantics")
    report = validate_batch("post_image_semantics", frame, embedding_dims={"image_embedding": 512})
    failure = _failed(report, "expect_column_values_to_be_between", "image_embedding__dim")
    assert failure.unexpected_count == N_ROWS
    assert len(failure.post_ids) == N_ROWS
    assert validate_batch(
        "post_image_semantics", frame, embedding_dims={"image_embedding": DIM}
    ).success


def test_a_non_unit_embedding_fails() -> None:
    frame = good_batch("post_image_semantics")
    frame.at[4, "image_embedding"] = [2 * x for x in frame.at[4, "image_embedding"]]
    report = validate_batch("post_image_semantics", frame)
    failure = _failed(report, "expect_column_values_to_be_between", "image_embedding__norm")
    assert failure.post_ids == ["p4"]


def test_an_embedding_with_nan_fails_finiteness() -> None:
    frame = good_batch("post_text_semantics")
    vector = list(frame.at[6, "text_embedding"])
    vector[0] = float("nan")
    frame.at[6, "text_embedding"] = np.asarray(vector, dtype="float32")
    report = validate_batch("post_text_semantics", frame)
    failure = _failed(report, "expect_column_values_to_be_in_set", "text_embedding__finite")
    assert failure.post_ids == ["p6"]


def test_a_duplicate_post_id_fails_uniqueness() -> None:
    frame = good_batch("post_temporal")
    frame.loc[5, "post_id"] = "p1"
    report = validate_batch("post_temporal", frame)
    failure = _failed(report, "expect_column_values_to_be_unique", "post_id")
    assert failure.post_ids == ["p1"]  # listed once, though two rows carry it
    assert failure.unexpected_count == 2


def test_a_null_post_id_fails_and_says_which_row() -> None:
    frame = good_batch("post_perplexity")
    frame.loc[3, "post_id"] = None
    report = validate_batch("post_perplexity", frame)
    failure = _failed(report, "expect_column_values_to_not_be_null", "post_id")
    assert failure.post_ids == [None]
    assert failure.rows == [3]
    assert "row 3" in report.summary()


def test_a_null_event_timestamp_fails() -> None:
    frame = good_batch("post_temporal")
    frame.loc[2, "event_timestamp"] = pd.NaT
    failure = _failed(
        validate_batch("post_temporal", frame),
        "expect_column_values_to_not_be_null",
        "event_timestamp",
    )
    assert failure.post_ids == ["p2"]


def test_a_missing_declared_field_fails_once() -> None:
    frame = good_batch("post_perplexity").drop(columns=["log_perplexity"])
    report = validate_batch("post_perplexity", frame)
    assert [(f.expectation, f.column) for f in report.failures] == [
        ("expect_column_to_exist", "log_perplexity")
    ]


def test_too_many_nulls_in_a_core_feature_fail_but_a_switched_off_group_may_be_null() -> None:
    frame = good_batch("post_content")
    frame["title_word_count"] = frame["title_word_count"].astype("float64")
    frame.loc[: N_ROWS // 2 + 1, "title_word_count"] = None  # over half null
    report = validate_batch("post_content", frame)
    assert _failed(report, "expect_column_values_to_not_be_null", "title_word_count")
    assert [f.column for f in report.failures] == ["title_word_count"]

    relaxed = validate_batch("post_content", frame, null_bounds={"title_word_count": 1.0})
    assert relaxed.success, relaxed.summary()


def test_the_summary_counts_failed_expectations() -> None:
    frame = good_batch("post_temporal")
    frame.loc[[1, 2, 4], "post_hour"] = 25
    report = validate_batch("post_temporal", frame)
    summary = report.summary()
    assert summary.startswith(f"post_temporal: 1 of {report.n_expectations} expectations failed")
    assert "expect_column_values_to_be_between(post_hour) on 3 rows [p1, p2, p4]" in summary


def test_unknown_view_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown feature view"):
        validate_batch("post_nonsense", good_batch("post_temporal"))


def test_kept_results_become_data_docs_once_per_refresh_and_validation_goes_on(
    tmp_path: Path,
) -> None:
    """Two refreshes' results on one site; the site's build leaves the batches' own GE context
    in place (GE renders through its current project)."""
    from smp_platform.validation import build_data_docs, keep_results
    from smp_platform.validation.records import data_docs_index

    runs = [datetime(2025, 3, 1, 2, tzinfo=UTC), datetime(2025, 3, 2, 2, tzinfo=UTC)]
    assert build_data_docs(tmp_path, runs[0]) is None  # nothing kept: no site to build
    for created_at in runs:
        bad = good_batch("post_temporal")
        bad.loc[3, "post_hour"] = 25
        good = good_batch("post_content")
        reports = [validate_batch("post_temporal", bad), validate_batch("post_content", good)]
        keep_results(tmp_path, created_at, list(bad["post_id"]), reports)
        index = build_data_docs(tmp_path, created_at)
        assert index == data_docs_index(tmp_path)
    pages = sorted(index.parent.glob("validations/*/refresh/*/*.html"))
    assert {(p.parts[-4], p.parts[-2][:8]) for p in pages} == {
        (view, day)
        for view in ("post_temporal", "post_content")
        for day in ("20250301", "20250302")
    }
    html = index.read_text()
    assert all(p.relative_to(index.parent).as_posix() in html for p in pages)
    assert html.count("Failed") >= 1
    # the batches' context still validates (and still fails what it should)
    assert validate_batch("post_temporal", good_batch("post_temporal")).success
    assert not validate_batch("post_temporal", bad).success
