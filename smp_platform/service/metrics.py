"""Prometheus metrics of the prediction service (``GET /metrics``).

One process (``smp serve``, tests, the demo): each app has its own registry (tests start
several apps in one process). ``smp serve --workers N``: prometheus_client's multiprocess mode;
:func:`shared_metrics_dir` makes a fresh directory and names it in ``PROMETHEUS_MULTIPROC_DIR``
before the workers start, each worker writes its values to its own files there, and whichever
worker answers a scrape sums them all (``MultiProcessCollector``). Counters and histograms add
up across workers; each gauge says how its workers' values combine (``multiprocess_mode``):

- ``smp_served_model_version``: ``livemin``, the oldest version a live worker serves (0 while
  one has none loaded): it equals the promoted version once every worker has picked it up.
- the status gauges of :meth:`ServiceMetrics.update_status`: ``livemostrecent``, the value set
  last by any live worker (the answering worker sets its own again at each scrape, so its
  ages are current). Unknown (None) is NaN; a worker that has not reported yet adds nothing.

``live*`` gauges of a worker that stopped are dropped: on its shutdown, and at a scrape for a
worker that died (its process is gone), so a crashed worker's model version does not linger.
"""

from __future__ import annotations

import glob
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.responses import Response

# Lookups take ~1 ms, a 1,000-post batch ~30 ms: buckets from 0.5 ms to 2.5 s.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN = math.nan


def multiprocess_dir() -> str | None:
    """The directory this process shares its metrics in, or None when it keeps them in memory.

    prometheus_client chooses where values live once, when it is imported, from the
    environment: the variable set later in the same process changes nothing, so both must hold.
    """
    path = os.environ.get(MULTIPROC_DIR_ENV)
    if path and getattr(prometheus_values.ValueClass, "_multiprocess", False):
        return path
    return None


@contextmanager
def shared_metrics_dir() -> Iterator[str]:
    """A fresh, empty ``PROMETHEUS_MULTIPROC_DIR`` for the worker processes started inside the
    block (they inherit the environment), removed with everything in it afterwards.

    A temporary directory (``TMPDIR``), not the data dir: each request rewrites memory-mapped
    files, which belong on a local disk rather than a shared volume; two services on one data
    dir must not add up each other's counts; and stale files of an earlier run would.
    """
    path = tempfile.mkdtemp(prefix="smp-metrics-")
    previous = os.environ.get(MULTIPROC_DIR_ENV)
    os.environ[MULTIPROC_DIR_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_DIR_ENV, None)
        else:
            os.environ[MULTIPROC_DIR_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess_dir = multiprocess_dir()
        self.requests = Counter(
            "smp_http_requests",
            "HTTP requests by route template and status code",
            ["route", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "smp_http_request_seconds",
            "Request latency by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.online_store_errors = Counter(
            "smp_online_store_errors",
            "Online store reads that failed (answered 503)",
            registry=self.registry,
        )
        self.model_version = Gauge(
            "smp_served_model_version",
            "Registered model version being served (0: none loaded; with several workers the "
            "oldest one a worker serves)",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self.online_coverage = self._status_gauge(
            "smp_online_coverage_ratio",
            "Share of the offline store's posts that the online store holds, per feature view",
            ["view"],
        )
        self.seconds_since_refresh = self._status_gauge(
            "smp_seconds_since_last_refresh", "Seconds since the last feature refresh ended"
        )
        self.seconds_since_promotion = self._status_gauge(
            "smp_seconds_since_champion_promoted",
            "Seconds since the served @champion version was promoted",
        )
        self.drift_share = self._status_gauge(
            "smp_last_refresh_drift_share",
            "Share of the measured features the last refresh found drifted from the champion",
        )
        self._children: dict[tuple[str, int], tuple[object, object]] = {}
        self._status: _Status | None = None
        self._views: set[str] = set()
        if self.multiprocess_dir:
            # The answer to a scrape: every worker's files, not this process's registry.
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed, self.multiprocess_dir)
        else:
            self._exposed = self.registry
            for gauge in (self.seconds_since_refresh, self.seconds_since_promotion):
                gauge.set(UNKNOWN)  # not 0: "refreshed 0 s ago" would read as fresh
            self.drift_share.set(UNKNOWN)

    def _status_gauge(
        self, name: str, documentation: str, labels: list[str] | None = None
    ) -> Gauge:
        return Gauge(
            name,
            documentation,
            labels or [],
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )

    def update_status(
        self,
        coverage: Mapping[str, float],
        last_refresh_at: datetime | None,
        champion_since: datetime | None,
        drift_share: float | None,
    ) -> None:
        """Set the platform's status gauges; None (not known) is NaN, a view no longer in
        ``coverage`` goes NaN too (a series cannot be removed in multiprocess mode). A naive
        datetime is taken as UTC. The ages are computed again at every scrape."""
        self._status = _Status(dict(coverage), last_refresh_at, champion_since, drift_share)
        self._set_status(self._status)

    def _set_status(self, status: _Status) -> None:
        views = self._views  # the watcher thread and a scrape may both be here
        for view in views - status.coverage.keys():
            self.online_coverage.labels(view).set(UNKNOWN)
        for view, ratio in status.coverage.items():
            self.online_coverage.labels(view).set(ratio)
        self._views = views | status.coverage.keys()
        now = time.time()
        self.seconds_since_refresh.set(_age(status.last_refresh_at, now))
        self.seconds_since_promotion.set(_age(status.champion_since, now))
        self.drift_share.set(UNKNOWN if status.drift_share is None else status.drift_share)

    def shutdown(self) -> None:
        """This worker stops: its ``live*`` gauges leave the sum (its counts stay in it)."""
        if self.multiprocess_dir:
            mark_process_dead(os.getpid(), self.multiprocess_dir)

    def observe(self, route: str, code: int, seconds: float) -> None:
        key = (route, code)
        children = self._children.get(key)
        if children is None:  # .labels() costs ~2 us; a request should not pay it twice
            children = (self.requests.labels(route, str(code)), self.latency.labels(route))
            self._children[key] = children
        children[0].inc()  # type: ignore[attr-defined]
        children[1].observe(seconds)  # type: ignore[attr-defined]

    def response(self) -> Response:
        if self._status is not None:
            # the ages as of now; with workers, what this one knows becomes the most recent
            self._set_status(self._status)
        if self.multiprocess_dir:
            _forget_dead_workers(self.multiprocess_dir)
        return Response(generate_latest(self._exposed), media_type=CONTENT_TYPE_LATEST)


@dataclass(frozen=True)
class _Status:
    coverage: dict[str, float]
    last_refresh_at: datetime | None
    champion_since: datetime | None
    drift_share: float | None


def _age(at: datetime | None, now: float) -> float:
    if at is None:
        return UNKNOWN
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, now - at.timestamp())  # a clock a little ahead is not a negative age


def _forget_dead_workers(path: str) -> None:
    """Drop the ``live*`` gauge files of worker processes that no longer exist (a crashed
    worker never ran its shutdown); a scrape every few seconds pays one ``kill(pid, 0)`` per
    file."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = os.path.basename(name)[: -len(".db")].rsplit("_", 1)[-1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            mark_process_dead(int(pid), path)
        except PermissionError:
            pass  # alive, someone else's: not ours to judge
