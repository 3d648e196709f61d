"""Feast feature views: one per view a registered feature group declares.

The names, dtypes, descriptions, kinds and rules of every field are the groups' own
(:mod:`smp_platform.features.groups` and the ``feature_groups`` setting); here they become Feast
objects, tagged with what the group declares (``FeatureGroup.view_tags``: its name as
``group``, what it reads, when it is computed) and the feature services that serve the view
(``services``); a view without a description takes its group's. Every stored row also carries
``input_hash`` and ``encoder_id`` (added by the refresh), ``post_id``, ``event_timestamp`` (the
post's publication time: the features are what was known then) and ``created_at``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feature_repo.data_sources import file_source, push_source
from smp_platform.features.schema import Dtype

if TYPE_CHECKING:
    from smp_platform.features.registry import FeatureGroups

# ttl 0: a post's features never expire (Feast reads 0 as "no limit").
NO_EXPIRY = timedelta(0)


def feast_type(dtype: Dtype) -> Any:
    from feast.types import Array, Bool, Float32, Float64, Int64, String

    scalar = {
        Dtype.FLOAT64: Float64,
        Dtype.FLOAT32: Float32,
        Dtype.INT64: Int64,
        Dtype.STRING: String,
        Dtype.BOOL: Bool,
    }
    return Array(Float32) if dtype.is_array else scalar[dtype]


def build_feature_views(groups: FeatureGroups, offline_dir: Path, entity: Any) -> dict[str, Any]:
    """The Feast ``FeatureView`` of every registered view, sources under ``offline_dir``."""
    from feast import FeatureView, Field

    # Which feature services read each view: what a change to it would touch (the UI's tag).
    services_of = {
        view.name: ",".join(s.name for s in groups.services.values() if view.name in s.views)
        for view in groups.views
    }
    views = {}
    for group in groups:
        for view in group.views:
            source = push_source if group.request_time else file_source
            views[view.name] = FeatureView(
                name=view.name,
                entities=[entity],
                ttl=NO_EXPIRY,
                schema=[
                    Field(
                        name=f.name,
                        dtype=feast_type(f.dtype),
                        description=f.description,
                        tags=f.tags,
                    )
                    for f in view.stored_fields
                ],
                source=source(offline_dir, view.name),
                online=True,
                description=group.view_description(view),
                tags={"services": services_of.get(view.name, ""), **group.view_tags(view)},
            )
    return views
