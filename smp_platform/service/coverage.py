"""How much of the offline store the online store serves, as the service sees it now.

The refresh checks every post of every view and keeps the outcome in ``status/online.json``
with a sample of stored post ids (:mod:`smp_platform.pipeline.online_check`); the service asks
the online store about that sample, live, at most once a second (one count per view on SQLite,
one small read per view on Redis): a store flushed after the last refresh shows here at once,
not the next night. ``/readyz`` and ``/metrics`` report it per view.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smp_platform.core.status import ONLINE, REFRESH, parse_time, read_status
from smp_platform.service.reader import OnlineReader, OnlineStoreUnavailable

CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Coverage:
    """Per served view: the share of its sampled stored posts the online store holds now
    (a view the offline store holds no row of is not reported: nothing to serve)."""

    ratios: dict[str, float] = field(default_factory=dict)
    sampled: dict[str, int] = field(default_factory=dict)
    checked: dict[str, Any] = field(default_factory=dict)  # the last refresh's full check
    error: str | None = None

    @property
    def empty(self) -> bool:
        """The store holds none of the sampled posts in any view (lost, flushed, replaced)."""
        return bool(self.ratios) and not any(self.ratios.values())

    def body(self) -> dict[str, Any]:
        return {
            "views": {view: round(ratio, 4) for view, ratio in sorted(self.ratios.items())},
            "sampled_posts": dict(sorted(self.sampled.items())),
            "last_check": self.checked or None,
        }


class CoverageProbe:
    """The live coverage of one data dir's online store, cached for :data:`CACHE_SECONDS`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._cached: tuple[float, int, Coverage] | None = None

    def coverage(self, reader: OnlineReader) -> Coverage:
        now = time.monotonic()
        with self._lock:
            cached = self._cached
            if cached is not None and now - cached[0] < CACHE_SECONDS and cached[1] == id(reader):
                return cached[2]
        status = read_status(self.root, ONLINE)
        views = status.get("views", {}) if isinstance(status.get("views"), dict) else {}
        samples = {v: [str(p) for p in info.get("sample", [])] for v, info in views.items()}
        checked = {
            "checked_at": status.get("checked_at"),
            "views": {
                v: {k: x for k, x in info.items() if k != "sample"} for v, info in views.items()
            },
        }
        sampled = {v: len(ids) for v, ids in samples.items() if ids}
        try:
            held = reader.held(samples)
        except OnlineStoreUnavailable as unavailable:
            result = Coverage({}, sampled, checked, str(unavailable))
        else:
            ratios = {v: n / sampled[v] for v, n in held.items() if v in sampled}
            result = Coverage(ratios, sampled, checked)
        with self._lock:
            self._cached = (now, id(reader), result)
        return result

    def refresh_status(self) -> dict[str, Any]:
        """``status/refresh.json``: last refresh times, whether it succeeded, its drift."""
        status = read_status(self.root, REFRESH)
        return {
            "finished_at": parse_time(status.get("finished_at")),
            "succeeded": status.get("succeeded"),
            "last_success_at": parse_time(status.get("last_success_at")),
            "drift_share": status.get("drift_share"),
        }
