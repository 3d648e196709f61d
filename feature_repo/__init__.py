"""The Feast feature repository, built from the registered feature groups.

- ``entities.py``: the entity (``post``) and its key ``post_id``;
- ``data_sources.py``: the parquet source (and, for request-time groups, the push source) of
  each view;
- ``feature_views.py``: a Feast ``FeatureView`` per view a group declares (names, dtypes,
  descriptions and tags come from the group);
- ``feature_services.py``: the feature services (the training/serving contract) the groups join.

Importing any of them imports no Feast and reads no environment. :func:`definitions` builds the
Feast objects from a :class:`~smp_platform.core.config.Settings` only when called: by
``FeatureStoreGateway.apply`` and, for the ``feast`` CLI, by the small repo that ``apply``
renders into ``<data dir>/feast/`` (``feast -c <data dir>/feast feature-views list``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from feature_repo.entities import build_entity
from feature_repo.feature_services import build_feature_services
from feature_repo.feature_views import build_feature_views
from smp_platform.features.registry import groups_for

if TYPE_CHECKING:
    from smp_platform.core.config import Settings


def definitions(settings: Settings) -> list[Any]:
    """Every Feast object of the repo (entity, views, services), sources under the data dir."""
    groups = groups_for(settings)
    entity = build_entity()
    views = build_feature_views(groups, settings.offline_dir, entity)
    services = build_feature_services(groups, views)
    return [entity, *views.values(), *services.values()]
