"""The registered model: an MLflow ``pyfunc`` holding the model matrix (adapters, PCA, term
reducers) and the CatBoost models whose mean it predicts (one per seed).

CatBoost travels in its native ``.cbm`` format as MLflow artifacts (``catboost``,
``catboost_1``, ... loaded in ``load_context``); the rest (feature spec, adapter weights as
numpy arrays, fitted PCA, TF-IDF + SVD) is pickled with the python model. Serving needs only a
frame with the served feature columns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from smp_platform.modeling.matrix import ModelMatrix

if TYPE_CHECKING:
    from catboost import CatBoostRegressor

log = logging.getLogger(__name__)

CATBOOST_ARTIFACT = "catboost"
CATBOOST_FILE = "model.cbm"


def _artifact_name(i: int) -> str:
    return CATBOOST_ARTIFACT if i == 0 else f"{CATBOOST_ARTIFACT}_{i}"


class PopularityModel(PythonModel):  # type: ignore[misc]
    """Predicts popularity from the served feature columns of a post: the mean of its
    CatBoost models (one per seed) on one model matrix."""

    def __init__(
        self, matrix: ModelMatrix, boosters: Sequence[CatBoostRegressor] | None = None
    ) -> None:
        self.matrix = matrix
        self.boosters: list[CatBoostRegressor] = list(boosters or [])

    @property
    def feature_columns(self) -> list[str]:
        return self.matrix.feature_columns

    def __getstate__(self) -> dict[str, Any]:
        # the boosters are saved natively as artifacts, not pickled
        state = dict(self.__dict__)
        state["boosters"] = []
        state.pop("booster", None)
        return state

    def load_context(self, context: Any) -> None:
        from catboost import CatBoostRegressor

        boosters = []
        # catboost, catboost_1, ...: a version registered before seeds holds "catboost" only
        for i in range(len(context.artifacts)):
            path = context.artifacts.get(_artifact_name(i))
            if path is None:
                break
            booster = CatBoostRegressor()
            booster.load_model(path, format="cbm")
            boosters.append(booster)
        self.boosters = boosters

    def save_boosters(self, directory: Path) -> dict[str, str]:
        """Each booster as a ``.cbm`` file in ``directory``: the artifacts to log."""
        if not self.boosters:
            raise RuntimeError("no CatBoost model to save")
        artifacts = {}
        for i, booster in enumerate(self.boosters):
            path = Path(directory) / (CATBOOST_FILE if i == 0 else f"model_{i}.cbm")
            booster.save_model(str(path), format="cbm")
            artifacts[_artifact_name(i)] = str(path)
        return artifacts

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Popularity for each row of ``frame`` (extra columns ignored, missing ones null)."""
        if not self.boosters:
            raise RuntimeError("the CatBoost model is not loaded")
        present = [c for c in self.feature_columns if c in frame.columns]
        if not present:
            raise ValueError(
                f"none of the model's feature columns are in the input; expected some of "
                f"{self.feature_columns}"
            )
        absent = [c for c in self.feature_columns if c not in frame.columns]
        if absent:
            log.warning("input lacks feature columns %s; they are read as null", absent)
        if len(frame) == 0:
            return np.zeros(0)
        matrix = self.matrix.transform(frame)
        predictions = [np.asarray(b.predict(matrix), dtype=np.float64) for b in self.boosters]
        return np.asarray(np.mean(predictions, axis=0), dtype=np.float64)

    # pd.DataFrame is a hint MLflow 3 accepts without deriving a (list-based) schema from it;
    # the signature logged with the model is the input contract
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        return self.predict_frame(pd.DataFrame(model_input))
