"""Feature services: the contract between a model family's training and its serving.

A registered model version records its feature service name (MLflow tag ``feature_service``);
the prediction service reads the champion's tag and asks Feast for exactly those features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feast import FeatureService, FeatureView

from feature_repo.data_sources import default_offline_dir
from feature_repo.entities import post
from feature_repo.feature_views import (
    CACHE_FIELDS,
    MODEL_VIEWS,
    TABULAR_VIEWS,
    build_feature_views,
)

# The paper's full model: tabular + text semantics + perplexity + image semantics.
# Image rows exist only when CLIP weights are configured; without them the image features are
# null and the model learns nothing from them (see DESIGN.md, "encoders are honest").
SERVICE_VIEWS: dict[str, tuple[str, ...]] = {
    "popularity_v1": TABULAR_VIEWS + MODEL_VIEWS,
    "popularity_tabular_v1": TABULAR_VIEWS,
}


def _served(view: FeatureView) -> Any:
    """A projection without the cache bookkeeping columns."""
    cache = {f.name for f in CACHE_FIELDS}
    wanted = [f.name for f in view.features if f.name not in cache]
    return view[wanted] if len(wanted) < len(view.features) else view


def build_feature_services(views: dict[str, FeatureView]) -> dict[str, FeatureService]:
    return {
        name: FeatureService(
            name=name,
            features=[_served(views[v]) for v in view_names],
            description=f"Features of the {name} model family",
            tags={"views": ",".join(view_names)},
        )
        for name, view_names in SERVICE_VIEWS.items()
    }


def definitions(offline_dir: Path) -> list[Any]:
    """Every Feast object of the repo, with sources under ``offline_dir``."""
    views = build_feature_views(offline_dir)
    services = build_feature_services(views)
    return [post, *views.values(), *services.values()]


_services = build_feature_services(build_feature_views(default_offline_dir()))
popularity_v1 = _services["popularity_v1"]
popularity_tabular_v1 = _services["popularity_tabular_v1"]
