"""The registered model: an MLflow ``pyfunc`` holding the model matrix (adapters, PCA) and CatBoost.

CatBoost travels in its native ``.cbm`` format as an MLflow artifact (loaded in
``load_context``); the rest (feature spec, adapter weights as numpy arrays, fitted PCA) is
pickled with the python model. Serving needs only a frame with the served feature columns.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from smp_platform.modeling.features import ModelMatrix

if TYPE_CHECKING:
    from catboost import CatBoostRegressor

log = logging.getLogger(__name__)

CATBOOST_ARTIFACT = "catboost"
CATBOOST_FILE = "model.cbm"


class PopularityModel(PythonModel):  # type: ignore[misc]
    """Predicts popularity from the served feature columns of a post."""

    def __init__(self, matrix: ModelMatrix, booster: CatBoostRegressor | None = None) -> None:
        self.matrix = matrix
        self.booster = booster

    @property
    def feature_columns(self) -> list[str]:
        return self.matrix.feature_columns

    def __getstate__(self) -> dict[str, Any]:
        # the booster is saved natively as an artifact, not pickled
        state = dict(self.__dict__)
        state["booster"] = None
        return state

    def load_context(self, context: Any) -> None:
        from catboost import CatBoostRegressor

        booster = CatBoostRegressor()
        booster.load_model(context.artifacts[CATBOOST_ARTIFACT], format="cbm")
        self.booster = booster

    def save_booster(self, directory: Path) -> Path:
        if self.booster is None:
            raise RuntimeError("no CatBoost model to save")
        path = Path(directory) / CATBOOST_FILE
        self.booster.save_model(str(path), format="cbm")
        return path

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Popularity for each row of ``frame`` (extra columns ignored, missing ones null)."""
        if self.booster is None:
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
        return np.asarray(self.booster.predict(matrix), dtype=np.float64)

    # pd.DataFrame is a hint MLflow 3 accepts without deriving a (list-based) schema from it;
    # the signature logged with the model is the input contract
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        return self.predict_frame(pd.DataFrame(model_input))
