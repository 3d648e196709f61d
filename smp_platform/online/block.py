"""The features of some posts as the request path holds them: one array per feature.

The online read (:class:`~smp_platform.service.reader.OnlineReader`) fills one from the online
store, draft scoring from the feature groups' frames; the compiled scorer
(:class:`~smp_platform.online.scorer.Scorer`) predicts from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FeatureBlock:
    """Features of ``post_ids`` in request order: one array per feature, NaN/None where missing."""

    post_ids: list[str]
    found: np.ndarray  # bool per post: at least one served feature is present
    numeric: dict[str, np.ndarray] = field(default_factory=dict)  # float64 (bools as 0/1)
    strings: dict[str, list[str | None]] = field(default_factory=dict)
    embeddings: dict[str, list[np.ndarray | None]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.post_ids)
