"""``GET /v1/posts/{post_id}/popularity``: the champion's prediction from the same Feast views
it was trained on (the feature service named by the model version's tag)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from smp_platform.config import Settings

log = logging.getLogger(__name__)


class Prediction(BaseModel):
    post_id: str
    popularity: float
    model_name: str
    model_version: str


@dataclass
class LoadedChampion:
    version: str
    feature_service: str
    model: Any  # mlflow.pyfunc.PyFuncModel
    feature_columns: list[str]

    @property
    def predictor(self) -> Any:
        return self.model.unwrap_python_model()


class ChampionCache:
    """The current ``@champion``, re-checked at most every ``poll_seconds``.

    A promotion is picked up without a restart; a check costs one registry read, a model load
    happens only when the alias points at a new version.
    """

    def __init__(self, settings: Settings, poll_seconds: float):
        self.settings = settings
        self.poll_seconds = poll_seconds
        self._champion: LoadedChampion | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def get(self) -> LoadedChampion | None:
        if time.monotonic() - self._checked_at < self.poll_seconds and self._champion:
            return self._champion
        with self._lock:
            if time.monotonic() - self._checked_at >= self.poll_seconds or not self._champion:
                self._champion = self._load_if_changed()
                self._checked_at = time.monotonic()
        return self._champion

    def _load_if_changed(self) -> LoadedChampion | None:
        from smp_platform.registry import ModelRegistry

        registry = ModelRegistry(self.settings)
        found = registry.champion()
        if found is None:
            return None
        version, feature_service = found
        if self._champion and self._champion.version == version:
            return self._champion
        model, columns = registry.load_with_columns(version)
        feature_service = feature_service or self.settings.feature_service
        log.info(
            "serving %s version %s (feature service %s)",
            self.settings.train.model_name,
            version,
            feature_service,
        )
        return LoadedChampion(version, feature_service, model, columns)


def create_app(settings: Settings, *, poll_seconds: float = 5.0) -> FastAPI:
    from smp_platform.store import FeatureStoreGateway, rows_with_features

    app = FastAPI(title="smp-platform prediction service", version="1")
    gateway = FeatureStoreGateway(settings)
    champions = ChampionCache(settings, poll_seconds)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        current = champions.get()
        return {
            "status": "ok",
            "model_name": settings.train.model_name,
            "model_version": current.version if current else None,
        }

    @app.get("/v1/posts/{post_id}/popularity", response_model=Prediction)
    def popularity(post_id: str) -> Any:
        current = champions.get()
        if current is None:
            return JSONResponse(
                status_code=503,
                content={
                    "detail": f"no @champion version of {settings.train.model_name}; "
                    "run `smp train` and `smp promote`"
                },
            )
        features = gateway.online_features([post_id], current.feature_service)
        if not rows_with_features(features, current.feature_columns).iloc[0]:
            return JSONResponse(
                status_code=404,
                content={
                    "detail": f"post {post_id!r} has no features in the online store: "
                    "unknown post, or not refreshed yet"
                },
            )
        # The pyfunc's own model, without MLflow's per-call signature checks (a few ms per
        # request); the batch path goes through pyfunc.predict and the tests hold them equal.
        value = float(current.predictor.predict_frame(features)[0])
        return Prediction(
            post_id=post_id,
            popularity=value,
            model_name=settings.train.model_name,
            model_version=current.version,
        )

    return app
