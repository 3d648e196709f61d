"""The promote verb: the candidate's recipe vs the ``@champion``'s on the same posts that
neither was fitted on; the alias moves only if the candidate is better (the rule:
:mod:`smp_platform.modeling.promotion`).

A registered version is refitted on every labelled post, so scoring the registered models on
any labelled posts would flatter both. Instead the comparison uses the candidate's backtest
(its recipe fitted on the posts before its window, scored on the window: recorded when it was
trained) and re-runs the champion's recipe, read from its logged params, on the same split.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from smp_platform.core.config import Settings
from smp_platform.core.errors import UserError
from smp_platform.features.registry import FeatureGroups, groups_for
from smp_platform.features.schema import EVENT_TIMESTAMP
from smp_platform.infra.mlflow_registry import ModelRegistry
from smp_platform.modeling.fit import backtest
from smp_platform.modeling.promotion import MAE_TOLERANCE, PromotionDecision, decide
from smp_platform.pipeline.frames import feature_spec, labelled_frame
from smp_platform.pipeline.monitor import ChampionReference, validation_drift

if TYPE_CHECKING:
    from smp_platform.modeling.psi import DriftReport

log = logging.getLogger(__name__)

FrameSource = Callable[[str], pd.DataFrame]  # feature service -> its labelled frame
# (champion version, its feature service) -> (drift report or None, the line for the record,
# blocks the promotion?)
DriftGate = Callable[[str, str], tuple["DriftReport | None", str, bool]]


def promote(
    registry: ModelRegistry,
    candidate_version: str,
    evaluate_fn: Callable[[str], dict[str, float]],
    *,
    mae_tolerance: float = MAE_TOLERANCE,
    comparison: str | Callable[[], str] = "",
    drift_gate: DriftGate | None = None,
) -> PromotionDecision:
    """Move ``@champion`` to the candidate if it beats the champion; record the decision.

    ``evaluate_fn(version)`` must score every version on the same posts, none of which the
    scored model was fitted on (e.g. :meth:`BacktestComparison.evaluate`); ``comparison``
    says how, for the record (a callable is asked after the evaluations). ``drift_gate``
    (when there is a champion to compare with) measures the posts the decision is scored on
    against the champion's training frame: when they drifted beyond the bound the alias
    stays, whatever the metrics say.
    """
    candidate_version = str(candidate_version)
    candidate_metrics = evaluate_fn(candidate_version)
    current = registry.champion()
    champion_version = current[0] if current else None
    champion_metrics = None
    drift_report, drift = None, ""
    if current is None:
        promoted, reason = True, "first champion: no version held the alias"
    elif champion_version == candidate_version:
        promoted, reason = False, "the candidate already is the champion"
        champion_metrics = candidate_metrics
    else:
        champion_metrics = evaluate_fn(str(champion_version))
        promoted, reason = decide(candidate_metrics, champion_metrics, mae_tolerance)
        if drift_gate is not None:
            drift_report, drift, blocks = drift_gate(str(current[0]), str(current[1]))
            if blocks:
                assert drift_report is not None
                why = drift_report.reason()
                # drift first: a better score on posts unlike the champion's says little
                reason = why if promoted else f"{why}; and {reason}"
                promoted = False
    if promoted:
        registry.set_champion(candidate_version)
    decision = PromotionDecision(
        promoted=promoted,
        reason=reason,
        candidate_metrics=candidate_metrics,
        champion_metrics=champion_metrics,
        candidate_version=candidate_version,
        champion_version=champion_version,
        comparison=comparison() if callable(comparison) else comparison,
        drift=drift,
        drift_report=drift_report,
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


@dataclass
class BacktestComparison:
    """Scores versions' recipes on the candidate's backtest split.

    The split is the candidate's recorded window: recipes are fitted on the labelled posts
    published before ``validation_start`` and scored on those from ``validation_start`` to
    ``validation_end``. The candidate's recorded backtest metrics are used as they are when
    the window still holds the same number of posts; otherwise (labels added since, another
    feature service) its recipe is re-run too.
    """

    registry: ModelRegistry
    candidate: str
    frames: FrameSource
    groups: FeatureGroups  # the fields that say how a recipe's columns are read
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tags = self.registry.tags(self.candidate)
        try:
            self.start = pd.Timestamp(tags["validation_start"])
            self.end = pd.Timestamp(tags["validation_end"])
        except KeyError as exc:
            raise UserError(
                f"version {self.candidate} records no validation window: retrain it"
            ) from exc
        self.recorded_n = int(tags.get("validation_n", "-1"))
        self.reruns: dict[str, int] = {}

    @property
    def description(self) -> str:
        rerun = ", ".join(f"v{v} re-run ({n} posts)" for v, n in self.reruns.items())
        return (
            f"backtest: each recipe fitted on the labelled posts before {self.start.isoformat()}"
            f", scored on {self.start.isoformat()} .. {self.end.isoformat()} "
            f"(candidate v{self.candidate} recorded on {self.recorded_n} posts"
            + (f"; {rerun}" if rerun else "")
            + ")"
        )

    def split(self, service: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        if service not in self._frames:
            self._frames[service] = self.frames(service)
        frame = self._frames[service]
        stamps = pd.to_datetime(frame[EVENT_TIMESTAMP], utc=True)
        start, end = _utc(self.start), _utc(self.end)
        return frame[stamps < start], frame[(stamps >= start) & (stamps <= end)]

    def evaluate(self, version: str) -> dict[str, float]:
        version = str(version)
        recipe = self.registry.recipe(version)
        train, valid = self.split(recipe.feature_service)
        if version == self.candidate and len(valid) == self.recorded_n:
            recorded = self.registry.recorded_metrics(version)
            if {"src", "mae"} <= set(recorded):
                return recorded
        if len(train) < 20 or valid.empty:
            raise UserError(
                f"too few labelled posts around version {self.candidate}'s window to re-run "
                f"version {version}'s recipe ({len(train)} before, {len(valid)} in it)"
            )
        columns = [c for c in recipe.feature_columns if c in train.columns]
        log.info(
            "re-running version %s's recipe on %d posts before %s, scoring %d",
            version,
            len(train),
            self.start.isoformat(),
            len(valid),
        )
        tested = backtest(train, valid, recipe.settings, feature_spec(self.groups, columns))
        self.reruns[version] = len(tested.valid)
        return tested.scores


def _utc(stamp: pd.Timestamp) -> pd.Timestamp:
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def promote_candidate(settings: Settings, version: str | None = None) -> PromotionDecision:
    """Promote ``version`` (default: the latest) if its recipe beats the champion's on the
    candidate's backtest split (each recipe reads its own feature service)."""
    registry = ModelRegistry(settings)
    version = str(version or registry.latest_version())
    comparison = BacktestComparison(
        registry, version, lambda service: labelled_frame(settings, service), groups_for(settings)
    )
    return promote(
        registry,
        version,
        comparison.evaluate,
        comparison=lambda: comparison.description,
        drift_gate=lambda version, service: validation_drift_gate(
            settings, registry, comparison, version, service
        ),
    )


def validation_drift_gate(
    settings: Settings,
    registry: ModelRegistry,
    comparison: BacktestComparison,
    champion_version: str,
    feature_service: str,
) -> tuple[DriftReport | None, str, bool]:
    """The candidate's validation posts (its backtest window, with the champion's features)
    against the champion's training frame: (report, line, blocks?)."""
    reference = ChampionReference(
        champion_version, feature_service, registry.reference_profile(champion_version)
    )
    _, validation = comparison.split(reference.feature_service)
    report, line = validation_drift(settings, reference, validation)
    blocks = report is not None and report.beyond_bound and settings.drift.block_promotion
    if report is not None and report.beyond_bound and not blocks:
        line += " [not blocking: drift.block_promotion is off]"
    return report, line, blocks
