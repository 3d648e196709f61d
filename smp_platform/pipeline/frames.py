"""The frames the verbs read from the offline store: every labelled post with its features as
of its publication time (train, tune, promote, evaluate, report), and the features of given
posts (predict, the drift of a refresh). One definition each."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from smp_platform.core.config import Settings
from smp_platform.core.errors import UserError
from smp_platform.features.registry import FeatureGroups, groups_for
from smp_platform.features.schema import EVENT_TIMESTAMP, POST_ID
from smp_platform.infra.feast_store import FeatureStoreGateway, rows_with_features
from smp_platform.infra.warehouse import Warehouse
from smp_platform.modeling.matrix import FeatureSpec, feature_kinds

log = logging.getLogger(__name__)


def served_columns(settings: Settings, service_name: str) -> list[str]:
    """The feature columns a feature service serves (its projections), in a stable order."""
    return groups_for(settings).service(service_name).columns


def feature_spec(groups: FeatureGroups, columns: Sequence[str]) -> FeatureSpec:
    """``columns`` by the kind a model reads them as (numeric, categorical, embedding, terms)."""
    return feature_kinds(columns, groups.fields)


def labelled_frame(settings: Settings, service_name: str | None = None) -> pd.DataFrame:
    """Every labelled post with its features as of its publication time, and its popularity."""
    service_name = service_name or settings.feature_service
    columns = served_columns(settings, service_name)
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        labels = warehouse.labels_frame()
    if labels.empty:
        raise UserError(
            "no labelled posts in the warehouse: run `smp ingest` on a dataset with labels first"
        )
    entities = labels.rename(columns={"posted_at": EVENT_TIMESTAMP})[[POST_ID, EVENT_TIMESTAMP]]
    frame = FeatureStoreGateway(settings).historical_features(entities, service_name)
    frame = frame.merge(labels[[POST_ID, "popularity"]], on=POST_ID, how="inner")
    known = rows_with_features(frame, columns)
    if not known.any():
        raise UserError("the labelled posts have no features yet: run `smp refresh` first")
    if not known.all():
        log.warning("%d labelled post(s) have no features yet and are left out", (~known).sum())
    frame = frame[known]
    return frame.sort_values([EVENT_TIMESTAMP, POST_ID]).reset_index(drop=True)


def posts_frame(settings: Settings, post_ids: Sequence[str], service_name: str) -> pd.DataFrame:
    """Features of the given posts as of their publication time (offline store)."""
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        posts = warehouse.posts_frame(list(post_ids))
    entities = pd.DataFrame({POST_ID: posts[POST_ID], EVENT_TIMESTAMP: posts["posted_at"]})
    return FeatureStoreGateway(settings).historical_features(entities, service_name)
