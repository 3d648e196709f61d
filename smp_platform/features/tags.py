"""Bag-of-terms text of a post's tags and words: stateless, so it can live in a feature view.

The view stores the *normalised term string* (lower case, one token per term, space
separated); the TF-IDF weighting and the SVD are fitted on the training posts inside the
registered model (:mod:`smp_platform.modeling.terms`), as DESIGN.md asks of anything fitted
on the data: a new model version never needs a feature backfill.

SMP-Video: tags are the suggested words (phrases such as ``"cute bird videos"``), the post
text is comma-separated words and hashtags. SMPD: tags are Alltags, the title free text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

# Letters and digits of any script; '#', '_', ',' and punctuation separate terms.
_TERM = re.compile(r"[^\W_]+", re.UNICODE)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def terms(text: object) -> list[str]:
    """Lower-case word terms of a free text (``"#Sunset,at Beach!"`` -> sunset, at, beach)."""
    if _is_missing(text):
        return []
    return _TERM.findall(str(text).lower())


def tag_terms(tags: object) -> list[str]:
    """One term per tag: a phrase keeps its words together (``"Cute Bird"`` -> ``cute_bird``).

    Duplicates are dropped (first one kept): a tag repeated by the author says nothing more.
    """
    if _is_missing(tags):
        return []
    if isinstance(tags, str):
        tags = [tags]
    out: dict[str, None] = {}
    for tag in tags if isinstance(tags, Iterable) else [tags]:
        words = terms(tag)
        if words:
            out["_".join(words)] = None
    return list(out)


def compute_term_strings(posts: pd.DataFrame) -> pd.DataFrame:
    """``post_id``, ``event_timestamp``, ``tag_terms`` and ``title_terms`` (space-joined)."""
    return pd.DataFrame(
        {
            "post_id": posts["post_id"].astype(str).to_numpy(),
            "event_timestamp": pd.to_datetime(posts["posted_at"]).dt.floor("us").to_numpy(),
            "tag_terms": [" ".join(tag_terms(v)) for v in posts["tags"]],
            "title_terms": [" ".join(terms(v)) for v in posts["title"]],
        }
    )
