"""The service's one door to the model registry, and the background watcher of ``@champion``.

:func:`read_champion` is the only place the service touches the registry; everything else in
``service/`` works with the :class:`LoadedChampion` it returns. :class:`ChampionWatcher` calls it
off the request path: a registry error or a broken new version is logged and retried with
backoff while the last good model keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smp_platform.core.config import Settings
from smp_platform.infra.mlflow_registry import ModelRegistry

log = logging.getLogger(__name__)

# Backoff after a failed registry check or model load: doubles from the poll interval up to this.
MAX_BACKOFF_SECONDS = 60.0
# A poll interval of 0 (tests, "check all the time") still leaves the registry some air.
MIN_POLL_SECONDS = 0.2


@dataclass
class LoadedChampion:
    version: str
    feature_service: str
    model: Any  # mlflow.pyfunc.PyFuncModel
    feature_columns: list[str]
    extras: dict[str, Any] = field(default_factory=dict)  # what the app compiles from it
    since: datetime | None = None  # when the alias moved to it (its champion_since tag)

    @property
    def predictor(self) -> Any:
        return self.model.unwrap_python_model()


@dataclass(frozen=True)
class RegistryAnswer:
    """What the registry says now: no champion (``version is None``), the loaded one, or a
    newly loaded one in ``loaded``."""

    version: str | None
    loaded: LoadedChampion | None = None


def read_champion(
    settings: Settings, loaded_version: str | None, registry: ModelRegistry | None = None
) -> RegistryAnswer:
    """Ask the registry for ``@champion``; load its model only when it is not the loaded one.

    ``registry``: the caller's client, reused between checks (one is built if not given).
    Raises whatever the registry or the model load raises (the watcher decides what to do).
    """
    if registry is None:
        registry = ModelRegistry(settings)
    found = registry.champion()
    if found is None:
        return RegistryAnswer(None)
    version, feature_service = found
    if version == loaded_version:
        return RegistryAnswer(version)
    model, columns = registry.load_with_columns(version)
    loaded = LoadedChampion(version, feature_service or settings.feature_service, model, columns)
    loaded.since = registry.champion_since(version)
    return RegistryAnswer(version, loaded)


@dataclass
class WatcherState:
    """What ``/readyz`` and ``/metrics`` report about the registry."""

    last_check_at: float | None = None  # monotonic time of the last successful registry answer
    last_error: str | None = None
    registry_has_champion: bool | None = None
    failures_in_a_row: int = 0


class ChampionWatcher:
    """Keeps the current ``@champion`` loaded, checking the registry in a daemon thread.

    ``prepare`` turns a freshly loaded champion into whatever the request path needs (a compiled
    scorer, a feature-view snapshot); it runs in the watcher thread and its errors count as a
    broken version. Requests only read :attr:`champion`, a single reference swap.
    """

    def __init__(
        self,
        settings: Settings,
        poll_seconds: float,
        prepare: Callable[[LoadedChampion], None] | None = None,
    ) -> None:
        self.settings = settings
        self.poll_seconds = max(poll_seconds, MIN_POLL_SECONDS)
        self.prepare = prepare
        self.champion: LoadedChampion | None = None
        self.state = WatcherState()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # One registry client for every check; dropped after a failed check, so a client whose
        # connection went bad is never retried forever.
        self._registry: ModelRegistry | None = None

    def check_once(self) -> bool:
        """One registry check (and model load if the alias moved); False on any error."""
        current = self.champion.version if self.champion else None
        try:
            if self._registry is None:
                self._registry = ModelRegistry(self.settings)
            answer = read_champion(self.settings, current, self._registry)
            if answer.loaded is not None and self.prepare is not None:
                self.prepare(answer.loaded)
        except Exception as error:  # noqa: BLE001 - any registry/model failure keeps the old model
            self._registry = None
            self.state.failures_in_a_row += 1
            self.state.last_error = f"{type(error).__name__}: {error}"
            if self.state.failures_in_a_row == 1 or self.state.failures_in_a_row % 10 == 0:
                log.warning(
                    "champion check failed (%d in a row), still serving version %s: %s",
                    self.state.failures_in_a_row,
                    current,
                    self.state.last_error,
                )
            return False
        self.state.last_check_at = time.monotonic()
        self.state.last_error = None
        self.state.failures_in_a_row = 0
        self.state.registry_has_champion = answer.version is not None
        if answer.version is None and current is not None:
            log.warning("the registry has no @champion now; still serving version %s", current)
        if answer.loaded is not None:
            log.info(
                "serving %s version %s (feature service %s)",
                self.settings.train.model_name,
                answer.loaded.version,
                answer.loaded.feature_service,
            )
            self.champion = answer.loaded
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def next_delay(self) -> float:
        failures = self.state.failures_in_a_row
        if failures == 0:
            return self.poll_seconds
        return min(self.poll_seconds * 2**failures, max(MAX_BACKOFF_SECONDS, self.poll_seconds))

    def _run(self) -> None:
        while not self._stop.wait(self.next_delay()):
            self.check_once()

    def seconds_since_check(self) -> float | None:
        if self.state.last_check_at is None:
            return None
        return time.monotonic() - self.state.last_check_at
