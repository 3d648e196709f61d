"""Materialization: whatever the offline store holds and the online store lacks goes online.

The parts put online are recorded in the warehouse (``materialized_parts``: part file, size,
mtime); every other part, whoever wrote it and however that run ended, is materialized over the
event-time range its rows span, view by view, in bounded windows, then recorded. A run that dies
before the record repeats the work, never skips it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from smp_platform.core.config import Settings
from smp_platform.core.faults import fault_point
from smp_platform.features.registry import groups_for
from smp_platform.infra.feast_store import FeatureStoreGateway
from smp_platform.infra.warehouse import Warehouse


def pending_parts(settings: Settings) -> dict[str, pd.DataFrame]:
    """Per view, the offline parts the online store may lack: every part not recorded as
    materialized, or rewritten since (size or mtime differ). Whoever wrote them and however
    that run ended, the next :func:`materialize_pending` puts them online."""
    gateway = FeatureStoreGateway(settings)
    with Warehouse(settings.warehouse_path) as warehouse:
        done = warehouse.materialized_parts()
    keys = ["part", "size", "mtime_ns"]
    pending = {}
    for view in (v.name for v in groups_for(settings).views):
        parts = gateway.parts(view)
        recorded = done.loc[done["feature_view"] == view, keys]
        merged = parts.merge(recorded, on=keys, how="left", indicator=True)
        todo = merged.loc[merged["_merge"] == "left_only", keys].reset_index(drop=True)
        if len(todo):
            pending[view] = todo
    return pending


def _time_clusters(ranges: pd.DataFrame, gap: timedelta) -> list[tuple[datetime, datetime]]:
    """Merge parts' [min_ts, max_ts] ranges that lie within ``gap`` of each other: a re-encoded
    2015 post and last night's posts become two short windows, not ten years of them."""
    clusters: list[tuple[datetime, datetime]] = []
    for low, high in sorted(zip(ranges["min_ts"], ranges["max_ts"], strict=True)):
        low, high = pd.Timestamp(low).to_pydatetime(), pd.Timestamp(high).to_pydatetime()
        if clusters and low - clusters[-1][1] <= gap:
            clusters[-1] = (clusters[-1][0], max(clusters[-1][1], high))
        else:
            clusters.append((low, high))
    return clusters


def materialize_pending(settings: Settings, overlap: timedelta | None = None) -> int:
    """Materialize every pending part, view by view, over the event-time range its rows span
    (bounded windows), then record the parts: a run that dies before the record repeats the
    work, never skips it. Returns the number of windows materialized."""
    overlap = (
        overlap if overlap is not None else timedelta(hours=settings.materialize_overlap_hours)
    )
    gateway = FeatureStoreGateway(settings)
    windows = 0
    for i, (view, parts) in enumerate(sorted(pending_parts(settings).items())):
        if i:
            fault_point("during-materialize")
        ranges = gateway.part_time_ranges(view, parts["part"].tolist())
        ranges = ranges.dropna(subset=["min_ts", "max_ts"])
        window = timedelta(days=settings.materialize_window_days)
        for low, high in _time_clusters(ranges, window):
            start = low.replace(tzinfo=UTC) - overlap
            end = high.replace(tzinfo=UTC) + timedelta(seconds=1)
            windows += gateway.materialize(start, end, [view])
        record = parts.merge(ranges, on="part", how="left").assign(feature_view=view)
        with Warehouse(settings.warehouse_path) as warehouse:
            warehouse.record_materialized(record)
    return windows
