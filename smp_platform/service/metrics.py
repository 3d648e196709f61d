"""Prometheus metrics of the prediction service (``GET /metrics``).

Each app has its own registry (tests start several apps in one process). With ``--workers N``
each worker process counts its own requests: a scrape sees one worker's numbers.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.responses import Response

# Lookups take ~1 ms, a 1,000-post batch ~30 ms: buckets from 0.5 ms to 2.5 s.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
            "Registered model version being served (0: none loaded)",
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], tuple[object, object]] = {}

    def observe(self, route: str, code: int, seconds: float) -> None:
        key = (route, code)
        children = self._children.get(key)
        if children is None:  # .labels() costs ~2 us; a request should not pay it twice
            children = (self.requests.labels(route, str(code)), self.latency.labels(route))
            self._children[key] = children
        children[0].inc()  # type: ignore[attr-defined]
        children[1].observe(seconds)  # type: ignore[attr-defined]

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
