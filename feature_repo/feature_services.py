"""Feature services: the contract between a model family's training and its serving.

A registered model version records its feature service name (MLflow tag ``feature_service``);
the prediction service reads the champion's tag and asks Feast for exactly those features. The
services are those the registered groups join (``FeatureGroup.services``), plus one of every
view (:data:`~smp_platform.features.registry.ALL_FEATURE_SERVICE`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smp_platform.features.registry import FeatureGroups


def build_feature_services(groups: FeatureGroups, views: dict[str, Any]) -> dict[str, Any]:
    """The Feast ``FeatureService`` of every service, over the built views' projections."""
    from feast import FeatureService

    return {
        spec.name: FeatureService(
            name=spec.name,
            features=[views[p.view][list(p.features)] for p in spec.projections],
            description=spec.description,
            tags={"views": ",".join(spec.views)},
        )
        for spec in groups.services.values()
    }
