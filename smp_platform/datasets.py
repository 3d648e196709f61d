"""Frames for training, evaluation and batch prediction, read through Feast (point in time)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from smp_platform.config import Settings
from smp_platform.errors import UserError

log = logging.getLogger(__name__)


def service_feature_columns(service_name: str) -> list[str]:
    """The features a feature service serves, in a stable order (from the Feast definitions)."""
    from feature_repo.feature_services import SERVICE_VIEWS
    from feature_repo.feature_views import feature_names

    if service_name not in SERVICE_VIEWS:
        raise UserError(
            f"unknown feature service {service_name!r}; known: {', '.join(SERVICE_VIEWS)}"
        )
    return [name for view in SERVICE_VIEWS[service_name] for name in feature_names(view)]


def rows_with_features(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Which rows have at least one served feature (Feast answers nulls for an unknown post)."""
    present = [c for c in columns if c in frame.columns]
    if not present:
        return pd.Series(False, index=frame.index)
    return frame[present].notna().any(axis=1)


def labelled_frame(settings: Settings, service_name: str | None = None) -> pd.DataFrame:
    """Every labelled post with its features as of its publication time, and its popularity."""
    from smp_platform.store import FeatureStoreGateway
    from smp_platform.warehouse import Warehouse

    service_name = service_name or settings.feature_service
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        labels = warehouse.labels_frame()
    if labels.empty:
        raise UserError(
            "no labelled posts in the warehouse: run `smp ingest` on a dataset with labels first"
        )
    entities = labels.rename(columns={"posted_at": "event_timestamp"})[
        ["post_id", "event_timestamp"]
    ]
    frame = FeatureStoreGateway(settings).historical_features(entities, service_name)
    frame = frame.merge(labels[["post_id", "popularity"]], on="post_id", how="inner")
    known = rows_with_features(frame, service_feature_columns(service_name))
    if not known.any():
        raise UserError("the labelled posts have no features yet: run `smp refresh` first")
    if not known.all():
        log.warning("%d labelled post(s) have no features yet and are left out", (~known).sum())
    frame = frame[known]
    return frame.sort_values(["event_timestamp", "post_id"]).reset_index(drop=True)


def posts_frame(settings: Settings, post_ids: Sequence[str], service_name: str) -> pd.DataFrame:
    """Features of the given posts as of their publication time (offline store)."""
    from smp_platform.store import FeatureStoreGateway
    from smp_platform.warehouse import Warehouse

    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        posts = warehouse.posts_frame(list(post_ids))
    entities = pd.DataFrame({"post_id": posts["post_id"], "event_timestamp": posts["posted_at"]})
    return FeatureStoreGateway(settings).historical_features(entities, service_name)
