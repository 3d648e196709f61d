"""The promotion rule, applied to metrics of two versions on the SAME validation posts.

Honest means neither number comes from a model fitted on the posts it is scored on: a
registered version is refitted on every labelled post, so the verb
(:mod:`smp_platform.pipeline.promote`) compares the two *recipes*, each fitted on the posts
before the candidate's backtest window and scored on that window.

A candidate becomes ``@champion`` when its SRC is strictly higher than the champion's AND its
MAE is not worse than the champion's by more than ``mae_tolerance`` (0.02 popularity units by
default). SRC is the challenge's ranking metric; the MAE guard stops a model that ranks
slightly better but is badly calibrated. The first version of a model becomes champion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smp_platform.modeling.psi import DriftReport

MAE_TOLERANCE = 0.02
PROMOTION_CRITERION = "src_candidate > src_champion and mae_candidate <= mae_champion + tolerance"


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    reason: str
    candidate_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    candidate_version: str = ""
    champion_version: str | None = None  # the champion before the decision
    comparison: str = ""  # on which posts, fitted how (logged with the decision)
    # the validation posts against the champion's training frame (empty: not measured, why)
    drift: str = ""
    drift_report: DriftReport | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        verdict = "promoted to @champion" if self.promoted else "not promoted"
        scores = f"SRC {self.candidate_metrics['src']:.3f}, MAE {self.candidate_metrics['mae']:.3f}"
        if self.champion_metrics is not None and self.champion_version != self.candidate_version:
            scores += (
                f" vs champion v{self.champion_version} SRC "
                f"{self.champion_metrics['src']:.3f}, MAE {self.champion_metrics['mae']:.3f}"
            )
        return f"version {self.candidate_version} {verdict}: {self.reason} [{scores}]"


def decide(
    candidate: dict[str, float], current: dict[str, float], mae_tolerance: float = MAE_TOLERANCE
) -> tuple[bool, str]:
    """(promote?, the reason with both versions' numbers)."""
    src_gain = candidate["src"] - current["src"]
    mae_loss = candidate["mae"] - current["mae"]
    numbers = (
        f"SRC {candidate['src']:.4f} vs {current['src']:.4f}, "
        f"MAE {candidate['mae']:.4f} vs {current['mae']:.4f}"
    )
    if src_gain <= 0:
        return False, f"SRC not higher than the champion's ({numbers})"
    if mae_loss > mae_tolerance:
        return False, f"MAE worse than the champion's by more than {mae_tolerance} ({numbers})"
    return True, f"higher SRC, MAE within tolerance {mae_tolerance} ({numbers})"
