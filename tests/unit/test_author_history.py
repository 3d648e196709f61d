"""Author popularity history as of the post, on hand-made rows with known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from smp_platform.features.author_history import AUTHOR_HISTORY_FIELDS, compute_author_history


def _posts() -> pd.DataFrame:
    # u1: four posts, p2 and p3 at the same instant; u2: one post.
    return pd.DataFrame(
        {
            "post_id": ["p4", "p1", "p2", "p3", "q1"],
            "user_id": ["u1", "u1", "u1", "u1", "u2"],
            "posted_at": pd.to_datetime(
                [
                    "2023-01-04 00:00",
                    "2023-01-01 00:00",
                    "2023-01-02 00:00",
                    "2023-01-02 00:00",
                    "2023-01-01 12:00",
                ]
            ),
        }
    )


def _labels() -> pd.DataFrame:
    return pd.DataFrame(
        {"post_id": ["p1", "p2", "p3", "p4", "q1"], "popularity": [2.0, 6.0, 4.0, 9.0, 7.0]}
    )


def _by_post(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("post_id")


def test_statistics_of_strictly_earlier_labels() -> None:
    out = _by_post(compute_author_history(_posts(), _labels()))
    assert list(out.columns) == ["event_timestamp", *AUTHOR_HISTORY_FIELDS]
    # first post of each author: nothing known
    for post in ("p1", "q1"):
        assert out.loc[post, "author_labelled_prior_posts"] == 0
        assert math.isnan(out.loc[post, "author_popularity_mean"])
        assert math.isnan(out.loc[post, "author_popularity_max"])
        assert math.isnan(out.loc[post, "author_popularity_last"])
    # p2 and p3 share an instant: each sees p1 only, never the other
    for post in ("p2", "p3"):
        assert out.loc[post, "author_labelled_prior_posts"] == 1
        assert out.loc[post, "author_popularity_mean"] == 2.0
        assert out.loc[post, "author_popularity_max"] == 2.0
        assert out.loc[post, "author_popularity_last"] == 2.0
    # p4 sees p1, p2, p3; "last" is the latest instant's mean (p2 and p3: (6 + 4) / 2)
    assert out.loc["p4", "author_labelled_prior_posts"] == 3
    assert out.loc["p4", "author_popularity_mean"] == pytest.approx(4.0)
    assert out.loc["p4", "author_popularity_max"] == 6.0
    assert out.loc["p4", "author_popularity_last"] == pytest.approx(5.0)


def test_output_keeps_the_order_and_keys_of_the_posts() -> None:
    posts = _posts()
    out = compute_author_history(posts, _labels())
    assert out["post_id"].tolist() == posts["post_id"].tolist()
    assert (out["event_timestamp"].to_numpy() == posts["posted_at"].to_numpy()).all()
    assert out["author_labelled_prior_posts"].dtype == "int64"


def test_changing_a_posts_label_never_changes_its_own_features() -> None:
    posts = _posts()
    before = _by_post(compute_author_history(posts, _labels()))
    for post in _labels()["post_id"]:
        changed = _labels()
        changed.loc[changed["post_id"] == post, "popularity"] = 100.0
        after = _by_post(compute_author_history(posts, changed))
        pd.testing.assert_series_equal(after.loc[post], before.loc[post])
        dropped = _by_post(compute_author_history(posts, _labels().query("post_id != @post")))
        pd.testing.assert_series_equal(dropped.loc[post], before.loc[post])


def test_a_later_label_never_changes_an_earlier_posts_features() -> None:
    posts = _posts()
    before = _by_post(compute_author_history(posts, _labels()))
    changed = _labels()
    changed.loc[changed["post_id"] == "p4", "popularity"] = -50.0  # the latest post of u1
    after = _by_post(compute_author_history(posts, changed))
    pd.testing.assert_frame_equal(after, before)  # nothing is later than p4
    changed = _labels()
    changed.loc[changed["post_id"] == "p2", "popularity"] = 60.0
    after = _by_post(compute_author_history(posts, changed))
    for post in ("p1", "p2", "p3", "q1"):  # p3 shares p2's instant: not later, not earlier
        pd.testing.assert_series_equal(after.loc[post], before.loc[post])
    assert after.loc["p4", "author_popularity_max"] == 60.0  # only p4 is later


def test_other_authors_labels_never_count() -> None:
    posts = _posts()
    before = _by_post(compute_author_history(posts, _labels()))
    changed = _labels()
    changed.loc[changed["post_id"] == "q1", "popularity"] = 0.0
    after = _by_post(compute_author_history(posts, changed))
    for post in ("p1", "p2", "p3", "p4"):
        pd.testing.assert_series_equal(after.loc[post], before.loc[post])


def test_missing_labels_are_skipped_not_counted() -> None:
    labels = _labels().query("post_id not in ['p2', 'p3']")
    out = _by_post(compute_author_history(_posts(), labels))
    assert out.loc["p4", "author_labelled_prior_posts"] == 1
    assert out.loc["p4", "author_popularity_mean"] == 2.0
    assert out.loc["p4", "author_popularity_last"] == 2.0  # p1: the latest labelled post
    with_nan = _labels()
    with_nan.loc[with_nan["post_id"] == "p1", "popularity"] = float("nan")
    out = _by_post(compute_author_history(_posts(), with_nan))
    assert out.loc["p2", "author_labelled_prior_posts"] == 0
    assert math.isnan(out.loc["p2", "author_popularity_mean"])


def test_labels_before_hides_the_labels_of_later_posts() -> None:
    """A backtest's validation posts: their labels were unknown when they were published."""
    out = _by_post(
        compute_author_history(_posts(), _labels(), labels_before=pd.Timestamp("2023-01-02"))
    )
    # p2/p3 are at the cutoff: hidden; p4 therefore knows only p1
    assert out.loc["p4", "author_labelled_prior_posts"] == 1
    assert out.loc["p4", "author_popularity_max"] == 2.0
    aware = compute_author_history(
        _posts(), _labels(), labels_before=pd.Timestamp("2023-01-02", tz="UTC")
    )
    pd.testing.assert_frame_equal(_by_post(aware), out)


def test_empty_inputs() -> None:
    posts = _posts().iloc[:0]
    out = compute_author_history(posts, _labels())
    assert out.empty
    assert list(out.columns) == ["post_id", "event_timestamp", *AUTHOR_HISTORY_FIELDS]
    out = compute_author_history(_posts(), _labels().iloc[:0])
    assert (out["author_labelled_prior_posts"] == 0).all()
    assert out["author_popularity_mean"].isna().all()
