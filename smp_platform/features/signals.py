"""Model-based feature groups: frame in, frame out (the models are passed in, I/O stays outside).

Each ``compute_*`` returns one row per post with ``post_id`` and the features of its view
(declared by its group, :mod:`smp_platform.features.groups`); the refresh adds the bookkeeping
(``input_hash``, ``encoder_id``) that decides when a row is recomputed.

Missing values: a similarity is NaN when either side is missing, including empty text (an empty
title or no tags has no meaning to compare); an embedding of empty text is still stored (see
:mod:`~smp_platform.features.text_embedding`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from smp_platform.features.image_embedding import ImageEncoder
    from smp_platform.features.perplexity import PerplexityScorer
    from smp_platform.features.text_embedding import TextEncoder

TAG_SEPARATOR = ", "  # tags can be phrases ("falconry training"): keep them apart


# --- small pure helpers -----------------------------------------------------------------------


def _as_rows(vectors: Any) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float64 matrix with zeros for missing rows, and a bool mask of present rows."""
    if isinstance(vectors, np.ndarray) and vectors.ndim == 2:
        matrix = vectors.astype(np.float64)
        present = np.asarray(~np.isnan(matrix).any(axis=1), dtype=bool)
        return np.where(present[:, None], matrix, 0.0), present
    rows = list(vectors)
    dims = {np.asarray(v).shape for v in rows if v is not None}
    if len(dims) > 1:
        raise ValueError(f"vectors of different shapes: {sorted(dims)}")
    dim = dims.pop()[0] if dims else 0
    matrix = np.zeros((len(rows), dim), dtype=np.float64)
    present = np.zeros(len(rows), dtype=bool)
    for i, vector in enumerate(rows):
        if vector is None:
            continue
        values = np.asarray(vector, dtype=np.float64)
        if not np.isnan(values).any():
            matrix[i], present[i] = values, True
    return matrix, present


def cosine_rows(a: Any, b: Any) -> np.ndarray:
    """Row-wise cosine similarity; NaN where either row is missing (None/NaN) or zero."""
    left, left_ok = _as_rows(a)
    right, right_ok = _as_rows(b)
    if len(left) != len(right):
        raise ValueError(f"row counts differ: {len(left)} vs {len(right)}")
    out = np.full(len(left), np.nan)
    if len(left) == 0 or left.shape[1] == 0 or right.shape[1] == 0:
        return out
    if left.shape[1] != right.shape[1]:
        raise ValueError(f"dimensions differ: {left.shape[1]} vs {right.shape[1]}")
    norms = np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1)
    ok = left_ok & right_ok & (norms > 0)
    out[ok] = np.einsum("ij,ij->i", left[ok], right[ok]) / norms[ok]
    return np.clip(out, -1.0, 1.0)


def tag_list(tags: Any) -> list[str]:
    """Tags as a list of non-empty strings (None, arrays and stray values tolerated)."""
    if tags is None or (isinstance(tags, float) and np.isnan(tags)):
        return []
    if isinstance(tags, str):
        tags = [tags]
    return [str(tag).strip() for tag in tags if tag is not None and str(tag).strip()]


def text_tags_text(tags: Any) -> str:
    """The tags of a post as one text, in their order ("" when there are none)."""
    return TAG_SEPARATOR.join(tag_list(tags))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _present(texts: Sequence[str]) -> np.ndarray:
    return np.array([bool(t.strip()) for t in texts], dtype=bool)


def _masked(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.where(keep, values, np.nan)


# --- feature groups ---------------------------------------------------------------------------


def compute_text_semantics(
    posts: pd.DataFrame, encoder: TextEncoder, *, captions: pd.Series | None = None
) -> pd.DataFrame:
    """post_text_semantics rows: title embedding, title-tags and caption-title similarity.

    ``captions`` overrides ``posts.caption`` (e.g. generated ones from
    :func:`~smp_platform.features.captions.resolve_captions`).
    """
    titles = [_text(t) for t in posts["title"]]
    tags = [text_tags_text(t) for t in posts["tags"]] if "tags" in posts else [""] * len(posts)
    caption_source = captions if captions is not None else posts.get("caption")
    caption_values = list(caption_source) if caption_source is not None else [None] * len(posts)
    caption_texts = [_text(c) for c in caption_values]

    # one encode call: the encoder deduplicates across titles, tags and captions
    vectors = encoder.encode(titles + tags + caption_texts)
    n = len(posts)
    title_vecs, tag_vecs, caption_vecs = vectors[:n], vectors[n : 2 * n], vectors[2 * n :]
    title_ok, tags_ok, caption_ok = _present(titles), _present(tags), _present(caption_texts)
    return pd.DataFrame(
        {
            "post_id": posts["post_id"].to_numpy(),
            "text_embedding": list(title_vecs.astype(np.float32)),
            "text_tags_similarity": _masked(cosine_rows(title_vecs, tag_vecs), title_ok & tags_ok),
            "caption_title_similarity": _masked(
                cosine_rows(caption_vecs, title_vecs), title_ok & caption_ok
            ),
        }
    )


def compute_image_semantics(
    posts: pd.DataFrame, image_encoder: ImageEncoder
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """post_image_semantics rows for posts whose image could be read, and the others' reasons.

    Returns (features, quarantine[post_id, reason]).
    """
    paths = list(posts["media_path"]) if "media_path" in posts else [None] * len(posts)
    titles = [_text(t) for t in posts["title"]]
    embeddings, reasons = image_encoder.encode_images(paths)
    ok = np.array([e is not None for e in embeddings], dtype=bool)
    post_ids = posts["post_id"].to_numpy()
    quarantine = pd.DataFrame(
        {
            "post_id": post_ids[~ok],
            "reason": [r for r, good in zip(reasons, ok, strict=True) if not good],
        }
    )
    kept = np.flatnonzero(ok)
    if len(kept) == 0:
        columns = ["post_id", "image_embedding", "image_title_similarity"]
        return pd.DataFrame(columns=columns), quarantine
    image_vecs = np.stack([e for e in embeddings if e is not None]).astype(np.float32)
    kept_titles = [titles[i] for i in kept]
    title_vecs = image_encoder.encode_texts(kept_titles)
    similarity = _masked(cosine_rows(image_vecs, title_vecs), _present(kept_titles))
    frame = pd.DataFrame(
        {
            "post_id": post_ids[kept],
            "image_embedding": list(image_vecs),
            "image_title_similarity": similarity,
        }
    )
    return frame, quarantine


def compute_perplexity(posts: pd.DataFrame, scorer: PerplexityScorer) -> pd.DataFrame:
    """post_perplexity rows for every post (NaN perplexity for empty text)."""
    titles = [_text(t) for t in posts["title"]]
    scores = scorer.score(titles)
    return pd.DataFrame(
        {
            "post_id": posts["post_id"].to_numpy(),
            "perplexity": scores.perplexity,
            "log_perplexity": scores.log_perplexity,
            "text_token_count": scores.text_token_count.astype(np.int64),
        }
    )
