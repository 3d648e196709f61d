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

    services = {}
    for spec in groups.services.values():
        # The groups behind a service say more to a reader of the Feast UI than its views do.
        members = list(dict.fromkeys(groups.group_of(view).name for view in spec.views))
        services[spec.name] = FeatureService(
            name=spec.name,
            features=[views[p.view][list(p.features)] for p in spec.projections],
            description=(
                f"{spec.description}: {len(spec.columns)} features in {len(spec.views)} "
                f"view(s) of group(s) {', '.join(members)}; a model version names its service "
                "(MLflow tag feature_service) and is served exactly these"
            ),
            tags={
                "views": ",".join(spec.views),
                "groups": ",".join(members),
                "features": str(len(spec.columns)),
            },
        )
    return services
