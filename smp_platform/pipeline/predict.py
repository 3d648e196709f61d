"""The predict verb: the champion's predictions for posts, from the offline store (batch)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from smp_platform.core.config import Settings
from smp_platform.core.errors import UserError
from smp_platform.features.schema import POST_ID
from smp_platform.infra.mlflow_registry import ModelRegistry
from smp_platform.pipeline.frames import posts_frame
from smp_platform.pipeline.ingest import ingest
from smp_platform.pipeline.refresh import refresh
from smp_platform.sources import read_source


def predict_posts(settings: Settings, post_ids: list[str]) -> pd.DataFrame:
    """post_id, popularity and model_version of each post, from the current ``@champion``."""
    registry = ModelRegistry(settings)
    version, service = registry.require_champion()
    model, columns = registry.load_with_columns(version)
    frame = posts_frame(settings, post_ids, service)
    inputs = frame[[c for c in columns if c in frame.columns]] if columns else frame
    frame["popularity"] = pd.Series(model.predict(inputs)).to_numpy(dtype=float)
    return frame[[POST_ID, "popularity"]].assign(model_version=version)


def predict_batch(settings: Settings, fmt: str, path: Path, output: Path) -> int:
    """Load posts (without labels), refresh their features, and let the champion predict them;
    writes ``post_id,popularity`` to ``output`` and returns the number of posts."""
    ModelRegistry(settings).require_champion()  # say so before computing any feature
    batch = read_source(fmt, Path(path), with_labels=False)
    post_ids = batch.posts[POST_ID].tolist()
    if not post_ids:
        raise UserError(f"no valid posts in {path}")
    ingest(settings, fmt, path, with_labels=False)
    refresh(settings)
    predictions = predict_posts(settings, post_ids)
    output.parent.mkdir(parents=True, exist_ok=True)
    predictions[[POST_ID, "popularity"]].to_csv(output, index=False)
    return len(predictions)
