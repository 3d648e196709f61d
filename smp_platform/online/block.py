"""The features of some posts as the request path holds them: one array per feature.

The online read (:class:`~smp_platform.service.reader.OnlineReader`) fills one from the online
store, draft scoring from the feature groups' frames; the compiled scorer
(:class:`~smp_platform.online.scorer.Scorer`) predicts from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from smp_platform.features.schema import Dtype, Field


@dataclass
class FeatureBlock:
    """Features of ``post_ids`` in request order: one array per feature, NaN/None where missing."""

    post_ids: list[str]
    found: np.ndarray  # bool per post: at least one served feature is present
    numeric: dict[str, np.ndarray] = field(default_factory=dict)  # float64 (bools as 0/1)
    strings: dict[str, list[str | None]] = field(default_factory=dict)
    embeddings: dict[str, list[np.ndarray | None]] = field(default_factory=dict)
    # per post: the newest event or write time of its rows, ISO-8601 UTC (online reads only)
    as_of: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.post_ids)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def block_from_frames(
    frames: Iterable[pd.DataFrame],
    fields: Mapping[str, Field],
    post_ids: Sequence[str],
) -> FeatureBlock:
    """The frames' features as a :class:`FeatureBlock`, what the online read gives: numbers
    and flags as float64, strings or None, float32 vectors or None (``fields``: name -> field,
    for the dtypes). A frame of one row is repeated to the block's ``len(post_ids)`` rows."""
    n = len(post_ids)
    block = FeatureBlock(list(post_ids), np.ones(n, dtype=bool))
    for frame in frames:
        for name in frame.columns:
            field_ = fields.get(name)
            if field_ is None:
                continue
            values = list(frame[name]) * (n // len(frame)) if len(frame) != n else list(frame[name])
            if field_.dtype.is_array:
                block.embeddings[name] = [
                    None if v is None else np.asarray(v, dtype=np.float32) for v in values
                ]
            elif field_.dtype == Dtype.STRING:
                block.strings[name] = [None if _missing(v) else str(v) for v in values]
            else:
                block.numeric[name] = np.array(
                    [np.nan if _missing(v) else float(v) for v in values], dtype=np.float64
                )
    return block
