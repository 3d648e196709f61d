"""The monitor verb (drift): how far a batch of posts lies from the champion's training frame.

Training logs a reference profile with each version (:func:`log_reference_profile`); a refresh
measures the posts it wrote against the champion's (:func:`refresh_drift`, a run tagged
``kind=drift`` with the table and the plot); a promotion measures the candidate's validation
posts against it (:func:`validation_drift`) and refuses when they drifted beyond
``settings.drift``; ``smp report`` shows the latest (:func:`latest_drift`). The measure itself
is :mod:`smp_platform.modeling.psi`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from smp_platform.core.config import Settings
from smp_platform.infra.mlflow_registry import ModelRegistry
from smp_platform.modeling.psi import DriftReport, build_profile, measure
from smp_platform.pipeline.frames import posts_frame

if TYPE_CHECKING:
    from smp_platform.modeling.fit import TrainedModel

log = logging.getLogger(__name__)


def log_reference_profile(
    registry: ModelRegistry, run_id: str, frame: pd.DataFrame, trained: TrainedModel
) -> dict[str, Any]:
    """Profile the columns the model reads (those it dropped, null on every post, left out)
    on the frame it was fitted on, and log it in the version's run."""
    spec = trained.model.matrix.spec.without(trained.model.matrix.dropped)
    profile = build_profile(
        frame,
        spec,
        bins=registry.settings.drift.bins,
        seed=trained.settings.seed,
        model=registry.name,
    )
    registry.log_reference_profile(run_id, profile)
    return profile


def measure_against(
    settings: Settings, profile: dict[str, Any], batch: pd.DataFrame, reference: str
) -> DriftReport:
    """``batch`` against ``profile`` with the configured bound."""
    bound = settings.drift
    return measure(
        profile,
        batch,
        psi_bound=bound.psi_bound,
        max_drifted_share=bound.max_drifted_share,
        min_posts=bound.min_posts,
        ignore=bound.ignore_columns,
        reference=reference,
    )


@dataclass
class ChampionReference:
    version: str
    feature_service: str
    profile: dict[str, Any] | None

    @property
    def label(self) -> str:
        return f"champion v{self.version}'s training frame"


def champion_reference(registry: ModelRegistry) -> ChampionReference | None:
    """The champion and its reference profile (None inside when it was trained before
    profiles existed); None without a champion."""
    found = registry.champion()
    if found is None:
        return None
    version, service = found
    return ChampionReference(version, service, registry.reference_profile(version))


def _no_champion_possible(settings: Settings) -> bool:
    # An embedded data dir without an MLflow database has no champion: say so without
    # creating the database (a first refresh runs long before any training).
    return settings.profile == "embedded" and not settings.mlflow_db_path.exists()


def refresh_drift(settings: Settings, post_ids: Sequence[str]) -> str:
    """Measure the posts a refresh wrote against the champion's training frame and log it
    (table, verdict, plot) as a ``kind=drift`` run. Returns the line for the summary."""
    return refresh_drift_report(settings, post_ids)[0]


def refresh_drift_report(
    settings: Settings, post_ids: Sequence[str]
) -> tuple[str, DriftReport | None]:
    """:func:`refresh_drift`'s line and its report (None when nothing was measured)."""
    ids = list(dict.fromkeys(post_ids))
    if not ids:
        return "not measured: no new posts", None
    if _no_champion_possible(settings):
        return "not measured: no champion yet", None
    registry = ModelRegistry(settings)
    reference = champion_reference(registry)
    if reference is None:
        return "not measured: no champion yet", None
    if reference.profile is None:
        why = f"not measured: champion v{reference.version} has no reference profile (retrain it)"
        return why, None
    batch = posts_frame(settings, ids, reference.feature_service)
    report = measure_against(settings, reference.profile, batch, reference.label)
    run_id = registry.record_drift(
        report,
        tags={"source": "refresh", "champion_version": reference.version},
    )
    log.info("drift of the refreshed posts (run %s): %s", run_id, report.summary())
    return report.summary(), report


def validation_drift(
    settings: Settings, reference: ChampionReference, validation: pd.DataFrame
) -> tuple[DriftReport | None, str]:
    """(report, line for the decision) of a candidate's validation posts against the
    champion's training frame; no report when the champion has no profile."""
    if reference.profile is None:
        return None, (
            f"not measured: champion v{reference.version} has no reference profile "
            "(trained before profiles were logged); not blocking"
        )
    report = measure_against(settings, reference.profile, validation, reference.label)
    return report, report.summary()


@dataclass
class LatestDrift:
    run_id: str
    started: pd.Timestamp
    tags: dict[str, str]
    table: pd.DataFrame
    plot: Path | None


def latest_drift(settings: Settings) -> LatestDrift | None:
    """The newest refresh drift run, its files under ``<reports>/drift-latest``; None if none."""
    if _no_champion_possible(settings):
        return None
    target = settings.reports_dir / "drift-latest"
    if target.exists():
        shutil.rmtree(target)
    found = ModelRegistry(settings).latest_drift(target)
    if found is None:
        return None
    run, folder = found
    table_path = folder / "drift.csv"
    table = pd.read_csv(table_path, keep_default_na=False, na_values=[""])
    plot = folder / "drift.png"
    return LatestDrift(
        run_id=run.info.run_id,
        started=pd.Timestamp(run.info.start_time, unit="ms", tz="UTC"),
        tags=dict(run.data.tags),
        table=table,
        plot=plot if plot.exists() else None,
    )
