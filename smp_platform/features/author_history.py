"""Author popularity history as of each post: a pure function, posts + labels in, features out.

For every post, statistics of the popularity labels of the same author's *earlier* posts:
how many are labelled, their mean, maximum and the latest one. The leakage guard is the
word *earlier*: a label counts only when its post was published strictly before the post
being described (posts at the same instant do not see each other), so a post's own label,
or the label of any later post, can never reach its features.

``labels_before`` hides every label of a post published at or after that instant, as a
backtest must: when the model is scored on the posts after a cutoff, the labels of those
posts were not known when they were published (popularity is measured days later).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

# The fields of the post_author_popularity view (smp_platform/features/groups/tabular.py).
AUTHOR_HISTORY_FIELDS: tuple[str, ...] = (
    "author_labelled_prior_posts",
    "author_popularity_mean",
    "author_popularity_max",
    "author_popularity_last",
)


def compute_author_history(
    posts: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    labels_before: datetime | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Per post of ``posts``: label statistics of the author's strictly earlier posts.

    ``posts`` needs ``post_id``, ``user_id``, ``posted_at`` and should hold every post of the
    authors concerned (the history), not only the ones to describe; ``labels`` needs
    ``post_id``, ``popularity``. Labels of posts absent from ``posts`` are ignored (their time
    is unknown). Returns ``post_id``, ``event_timestamp`` and :data:`AUTHOR_HISTORY_FIELDS`
    in the order of ``posts``; the statistics are null where no earlier label is known.
    """
    keys = pd.DataFrame(
        {
            "post_id": posts["post_id"].astype(str).to_numpy(),
            "user_id": posts["user_id"].astype(str).to_numpy(),
            "posted_at": pd.to_datetime(posts["posted_at"]).dt.floor("us").to_numpy(),
        }
    )
    known = labels[["post_id", "popularity"]].copy()
    known["post_id"] = known["post_id"].astype(str)
    known["popularity"] = pd.to_numeric(known["popularity"], errors="coerce")
    known = known.dropna(subset=["popularity"]).drop_duplicates("post_id", keep="last")
    frame = keys.drop_duplicates("post_id").merge(known, on="post_id", how="left")
    if labels_before is not None:
        cutoff = pd.Timestamp(labels_before)
        if cutoff.tzinfo is not None:
            cutoff = cutoff.tz_convert("UTC").tz_localize(None)
        frame.loc[frame["posted_at"] >= cutoff, "popularity"] = np.nan

    # One row per (author, instant): posts published at the same instant share their history.
    moments = (
        frame.groupby(["user_id", "posted_at"], sort=True)["popularity"]
        .agg(n="count", total="sum", top="max", mean="mean")
        .reset_index()
    )
    by_author = moments.groupby("user_id", sort=False)
    # Everything up to and including the previous instant: cumulative sums minus this one.
    moments["prior_n"] = by_author["n"].cumsum() - moments["n"]
    prior_total = by_author["total"].cumsum() - moments["total"]
    running_max = moments["top"].fillna(-np.inf).groupby(moments["user_id"]).cummax()
    prior_max = running_max.groupby(moments["user_id"]).shift(1)
    moments["prior_max"] = prior_max.where(np.isfinite(prior_max))
    last = moments["mean"].groupby(moments["user_id"]).shift(1)
    moments["prior_last"] = last.groupby(moments["user_id"]).ffill()
    with np.errstate(invalid="ignore", divide="ignore"):
        moments["prior_mean"] = np.where(
            moments["prior_n"] > 0, prior_total / moments["prior_n"], np.nan
        )

    described = keys.merge(
        moments[["user_id", "posted_at", "prior_n", "prior_mean", "prior_max", "prior_last"]],
        on=["user_id", "posted_at"],
        how="left",
    )
    no_history = described["prior_n"].fillna(0) == 0
    out = pd.DataFrame(
        {
            "post_id": keys["post_id"].to_numpy(),
            "event_timestamp": keys["posted_at"].to_numpy(),
            "author_labelled_prior_posts": described["prior_n"].fillna(0).astype("int64"),
            "author_popularity_mean": described["prior_mean"].astype("float64"),
            "author_popularity_max": described["prior_max"].astype("float64"),
            "author_popularity_last": described["prior_last"].astype("float64"),
        }
    )
    stats = ["author_popularity_mean", "author_popularity_max", "author_popularity_last"]
    out.loc[no_history.to_numpy(), stats] = np.nan
    return out


def label_history_keys(history: pd.DataFrame) -> pd.Series:
    """Per post of ``history``: a key of the earlier labels its author statistics depend on.

    ``history`` holds every post of the authors concerned (``post_id``, ``user_id``,
    ``posted_at``, ``popularity``, null when unlabelled). The key changes exactly when a label
    of an earlier post by the same author changes the statistics (a new, changed or removed
    label), never with the post's own label or a later one; "" when no earlier label is known.
    A refresh folds it into the input hash of the post's tabular rows, indexed by ``post_id``.
    """
    labels = history.loc[history["popularity"].notna(), ["post_id", "popularity"]]
    stats = compute_author_history(history, labels)
    keys = [
        "" if n == 0 else "|".join([str(int(n)), *(f"{float(v):.9g}" for v in (mean, top, last))])
        for n, mean, top, last in zip(
            stats["author_labelled_prior_posts"],
            stats["author_popularity_mean"],
            stats["author_popularity_max"],
            stats["author_popularity_last"],
            strict=True,
        )
    ]
    return pd.Series(keys, index=stats["post_id"].to_numpy(), dtype=object)
