"""Feature services: the contract between a model family's training and its serving.

A registered model version records its feature service name (MLflow tag ``feature_service``);
the prediction service reads the champion's tag and asks Feast for exactly those features.
A service is a list of projections (a view and the features served from it); the served
columns of a service are read from these projections, here and in the built ``FeatureService``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feature_repo.feature_views import VIEWS, feature_names


@dataclass(frozen=True)
class Projection:
    view: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    description: str
    projections: tuple[Projection, ...]

    @property
    def columns(self) -> list[str]:
        """The served feature columns, in a stable order."""
        return [name for p in self.projections for name in p.features]

    @property
    def views(self) -> tuple[str, ...]:
        return tuple(p.view for p in self.projections)


def _served(*view_groups: str) -> tuple[Projection, ...]:
    """Every feature (no bookkeeping) of the views of the given groups."""
    return tuple(
        Projection(v.name, tuple(feature_names(v.name))) for v in VIEWS if v.group in view_groups
    )


# The paper's full model: tabular + text semantics + image semantics + perplexity. Image rows
# exist only when CLIP weights are configured; without them the image features are null and the
# model learns nothing from them (see DESIGN.md, "encoders are honest").
SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec(
            "popularity_v1",
            "Features of the popularity_v1 model family",
            _served("tabular", "text", "image", "perplexity"),
        ),
        ServiceSpec(
            "popularity_tabular_v1",
            "Features of the popularity_tabular_v1 model family",
            _served("tabular"),
        ),
    )
}


def service_spec(name: str) -> ServiceSpec:
    """The named service; a ``KeyError`` naming the known ones otherwise."""
    if name not in SERVICES:
        raise KeyError(f"unknown feature service {name!r}; known: {', '.join(SERVICES)}")
    return SERVICES[name]


def build_feature_services(views: dict[str, Any]) -> dict[str, Any]:
    """The Feast ``FeatureService`` of every spec, over the built views' projections."""
    from feast import FeatureService

    return {
        spec.name: FeatureService(
            name=spec.name,
            features=[views[p.view][list(p.features)] for p in spec.projections],
            description=spec.description,
            tags={"views": ",".join(spec.views)},
        )
        for spec in SERVICES.values()
    }
