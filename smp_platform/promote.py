"""The promote verb: candidate vs ``@champion`` on the same validation posts; the alias moves
only if the candidate is better (the rule: :mod:`smp_platform.modeling.promotion`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd

from smp_platform.config import Settings
from smp_platform.modeling.promotion import MAE_TOLERANCE, PromotionDecision, decide
from smp_platform.registry import ModelRegistry

log = logging.getLogger(__name__)


def promote(
    registry: ModelRegistry,
    candidate_version: str,
    evaluate_fn: Callable[[str], dict[str, float]],
    *,
    mae_tolerance: float = MAE_TOLERANCE,
) -> PromotionDecision:
    """Move ``@champion`` to the candidate if it beats the champion; record the decision.

    ``evaluate_fn(version)`` must score every version on the same validation posts, e.g.
    ``lambda v: registry.evaluate_version(v, valid_frame)``.
    """
    candidate_version = str(candidate_version)
    candidate_metrics = evaluate_fn(candidate_version)
    current = registry.champion()
    champion_version = current[0] if current else None
    champion_metrics = None
    if current is None:
        promoted, reason = True, "first champion: no version held the alias"
    elif champion_version == candidate_version:
        promoted, reason = False, "the candidate already is the champion"
        champion_metrics = candidate_metrics
    else:
        champion_metrics = evaluate_fn(str(champion_version))
        promoted, reason = decide(candidate_metrics, champion_metrics, mae_tolerance)
    if promoted:
        registry.set_champion(candidate_version)
    decision = PromotionDecision(
        promoted=promoted,
        reason=reason,
        candidate_metrics=candidate_metrics,
        champion_metrics=champion_metrics,
        candidate_version=candidate_version,
        champion_version=champion_version,
    )
    registry.record_promotion(decision, mae_tolerance)
    log.info(
        "%s version %s %s: %s",
        registry.name,
        candidate_version,
        "promoted to @champion" if promoted else "not promoted",
        reason,
    )
    return decision


def promote_candidate(settings: Settings, version: str | None = None) -> PromotionDecision:
    """Promote ``version`` (default: the latest), each version read through its own feature
    service on the same validation posts."""
    from smp_platform.train import validation_frame

    registry = ModelRegistry(settings)
    version = version or registry.latest_version()
    frames: dict[str, pd.DataFrame] = {}

    def evaluate(v: str) -> dict[str, float]:
        service = registry.feature_service(v)
        if service not in frames:
            frames[service] = validation_frame(settings, service)
        return registry.evaluate_version(v, frames[service])

    return promote(registry, str(version), evaluate)
