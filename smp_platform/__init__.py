"""smp-platform: feature-store backed popularity prediction for social media posts.

The package is in layers, each importing only those below it (``tests/unit/test_layers.py``
holds the code to it): ``core`` (settings, errors, locking), ``features`` (the feature groups),
``validation``, ``modeling`` (pure: adapter, model matrix, CatBoost, metrics), ``infra`` (one
door per outside system), ``sources`` (dataset readers), ``pipeline`` (the batch verbs) and
``online`` (the request-time path), then ``service`` (HTTP), and the CLI on top.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

__version__ = "0.1.0"

# Modules that moved, by their old names. A registered model pickles the classes it holds by
# module path (``smp_platform.modeling.features.ModelMatrix``, ``smp_platform.config.
# TrainSettings`` before the layers): a version registered then must still load.
MOVED_MODULES = {
    "smp_platform.config": "smp_platform.core.config",
    "smp_platform.modeling.features": "smp_platform.modeling.matrix",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as the module it moved to (the same module object)."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name in MOVED_MODULES:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """The module it moved to is imported already."""


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
