"""A model registered before the layers holds classes pickled under their old module paths;
it must still load (smp_platform.MOVED_MODULES)."""

from __future__ import annotations

import pickle
import sys

import numpy as np

from smp_platform import MOVED_MODULES
from smp_platform.core.config import TrainSettings
from smp_platform.modeling.matrix import FeatureSpec, ModelMatrix


def _pickled_under(cls: type, module: str, obj: object) -> bytes:
    real = cls.__module__
    cls.__module__ = module
    try:
        return pickle.dumps(obj)
    finally:
        cls.__module__ = real


def test_objects_pickled_under_old_paths_load_as_the_moved_classes() -> None:
    settings = TrainSettings(depth=3)
    matrix = ModelMatrix(FeatureSpec(("a",), (), ()), settings)
    old_settings = _pickled_under(TrainSettings, "smp_platform.config", settings)
    old_matrix = _pickled_under(ModelMatrix, "smp_platform.modeling.features", matrix)
    assert b"smp_platform.config" in old_settings
    assert b"smp_platform.modeling.features" in old_matrix
    for name in MOVED_MODULES:  # as in a fresh process: the old names never imported yet
        sys.modules.pop(name, None)
    loaded_settings = pickle.loads(old_settings)
    loaded_matrix = pickle.loads(old_matrix)
    assert type(loaded_settings) is TrainSettings and loaded_settings.depth == 3
    assert type(loaded_matrix) is ModelMatrix
    assert loaded_matrix.spec.numeric == ("a",)
    assert np.isclose(loaded_matrix.settings.learning_rate, settings.learning_rate)


def test_an_old_name_is_the_same_module_object() -> None:
    import importlib

    for old, new in MOVED_MODULES.items():
        assert importlib.import_module(old) is importlib.import_module(new)
