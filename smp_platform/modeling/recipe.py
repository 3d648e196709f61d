"""A model's recipe: the training settings a search may change, where ``smp tune`` keeps the
best one (``<data dir>/recipe.json``, which ``smp train`` uses when present), and how a
registered version's logged params give its recipe back (promotion re-runs it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smp_platform.core.config import TrainSettings

RECIPE_FILE = "recipe.json"
# The run param holding a version's whole TrainSettings as JSON.
RECIPE_PARAM = "recipe"
# What the search changes; everything else (adapter, PCA, seeds) stays as configured.
TUNABLE_FIELDS = (
    "loss_function",
    "depth",
    "learning_rate",
    "l2_leaf_reg",
    "iterations",
    "exclude_views",
)
# Versions registered before the recipe was logged as one param were trained with these.
LEGACY_RECIPE: dict[str, Any] = {"loss_function": "RMSE", "l2_leaf_reg": 3.0, "seeds": 1}


def recipe_columns(
    feature_columns: Sequence[str], settings: TrainSettings, view_of: Mapping[str, str]
) -> list[str]:
    """The served columns a recipe's model reads: all but those of its excluded views
    (``view_of``: feature -> its view)."""
    excluded = set(settings.exclude_views)
    return [c for c in feature_columns if view_of.get(c) not in excluded]


def recipe_path(root: Path) -> Path:
    return Path(root) / RECIPE_FILE


def apply_recipe(settings: TrainSettings, recipe: Mapping[str, Any]) -> TrainSettings:
    """``settings`` with the recipe's tunable fields (validated; other keys are ignored)."""
    update = {k: v for k, v in recipe.items() if k in TUNABLE_FIELDS}
    return TrainSettings.model_validate({**settings.model_dump(), **update})


def save_recipe(root: Path, recipe: Mapping[str, Any], **about: Any) -> Path:
    """Write the recipe (tunable fields) and what it came from, atomically."""
    path = recipe_path(root)
    body = {
        "recipe": {k: recipe[k] for k in TUNABLE_FIELDS if k in recipe},
        "saved_at": datetime.now(UTC).isoformat(),
        **about,
    }
    scratch = path.with_suffix(".json.tmp")
    scratch.write_text(json.dumps(body, indent=2, default=str))
    scratch.replace(path)
    return path


def load_recipe(root: Path) -> dict[str, Any] | None:
    """The saved recipe's fields, or None when ``smp tune`` never saved one here."""
    path = recipe_path(root)
    if not path.exists():
        return None
    recipe = json.loads(path.read_text()).get("recipe") or {}
    return dict(recipe)


def recipe_from_params(params: Mapping[str, str]) -> TrainSettings:
    """The recipe a version was trained with, from its run's params."""
    if RECIPE_PARAM in params:
        return TrainSettings.model_validate_json(params[RECIPE_PARAM])
    scalars = {k: params[k] for k in TrainSettings.model_fields if k in params}
    scalars.pop("exclude_views", None)
    return TrainSettings.model_validate({**LEGACY_RECIPE, **scalars})
