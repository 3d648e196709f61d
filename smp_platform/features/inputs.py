"""What a group's rows depend on, as the input hash stored with each of them.

A group's ``reads`` say which inputs count: the post's content hash always, the author's row
(:attr:`Input.AUTHOR_PROFILE`), the media file's size and mtime (:attr:`Input.MEDIA`, so a changed
image at the same path is recomputed) and the author's earlier labels
(:attr:`Input.LABEL_HISTORY`, so a new label recomputes the author's later posts, never the
labelled post itself). A change to anything else leaves the group's rows current.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from typing import Any

import pandas as pd

from smp_platform.features.author_history import label_history_keys
from smp_platform.features.group import Input
from smp_platform.features.schema import INPUT_HASH, POST_ID


def stable_hash(*values: Any) -> str:
    return hashlib.sha1(
        "\x1f".join("" if v is None else str(v) for v in values).encode()
    ).hexdigest()[:16]


def media_fingerprint(path: Any) -> tuple[int, int] | None:
    """(size, mtime_ns) of a post's media file; None when there is no readable file."""
    if not isinstance(path, str | os.PathLike) or not str(path):
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def input_hashes(
    reads: Collection[Input], posts: pd.DataFrame, label_history: pd.DataFrame | None = None
) -> pd.Series:
    """Per post: the hash of the inputs ``reads`` names. ``posts`` needs ``content_hash`` and,
    as read, ``author_content_hash`` and ``media_path``; ``label_history`` is every post of the
    posts' authors (:meth:`Warehouse.author_label_history`) when ``reads`` has the labels.

    A post without a media file hashes as before media counted, so stored rows stay current.
    """
    n = len(posts)
    nothing = pd.Series([None] * n, index=posts.index)
    authors = posts.get("author_content_hash", nothing) if Input.AUTHOR_PROFILE in reads else None
    media = posts.get("media_path", nothing) if Input.MEDIA in reads else nothing
    values = []
    for i, (content, path) in enumerate(zip(posts["content_hash"], media, strict=True)):
        parts = [content] if authors is None else [content, authors.iloc[i]]
        fingerprint = media_fingerprint(path)
        values.append(stable_hash(*parts, *(fingerprint or ())))
    if Input.LABEL_HISTORY in reads:
        if label_history is None:
            raise ValueError("a group that reads the label history needs it to hash its inputs")
        keys = label_history_keys(label_history).reindex(posts[POST_ID]).fillna("").to_numpy()
        values = [h if not k else stable_hash(h, k) for h, k in zip(values, keys, strict=True)]
    return pd.Series(values, index=posts.index, name=INPUT_HASH, dtype=object)
