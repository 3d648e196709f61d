"""The middleware's request ID and access record (smp_platform/service/middleware.py): which
client IDs are kept, and an unhandled error still answered with the ID, counted and logged."""

from __future__ import annotations

import logging
import re

import pytest
from starlette.testclient import TestClient

from smp_platform.service.metrics import ServiceMetrics
from smp_platform.service.middleware import ServiceMiddleware, request_id_of


@pytest.mark.parametrize(
    "given", ["abc-123", "x" * 128, "0af7651916cd43dd8448eb211c80319c", "a:b/c=d"]
)
def test_a_sane_client_id_is_kept(given: str) -> None:
    assert request_id_of([(b"accept", b"*/*"), (b"x-request-id", given.encode())]) == given


@pytest.mark.parametrize(
    "given",
    [b"", b"x" * 129, b"two words", b"tab\there", b"caf\xc3\xa9", b"new\nline", b"\x00"],
)
def test_anything_else_gets_a_fresh_id(given: bytes) -> None:
    fresh = request_id_of([(b"x-request-id", given)])
    assert re.fullmatch(r"[0-9a-f]{32}", fresh)
    assert fresh != request_id_of([(b"x-request-id", given)])  # a new one each time


async def _broken_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    raise RuntimeError("a bug in a route")


def test_an_unhandled_error_is_answered_with_the_id_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = ServiceMetrics()
    client = TestClient(
        ServiceMiddleware(_broken_app, metrics=metrics), raise_server_exceptions=False
    )
    with caplog.at_level(logging.INFO, logger="smp.access"):
        answer = client.get("/v1/anything", headers={"X-Request-ID": "trace-42"})
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "trace-42"
    assert "trace-42" in answer.json()["detail"]  # the ID a user can quote
    (record,) = [r for r in caplog.records if r.name == "smp.access"]
    assert (record.method, record.route, record.status, record.request_id) == (  # type: ignore[attr-defined]
        "GET",
        "unmatched",
        500,
        "trace-42",
    )
    exposition = bytes(metrics.response().body).decode()
    assert 'smp_http_requests_total{code="500",route="unmatched"} 1.0' in exposition


def test_the_error_goes_on_to_the_server_after_the_answer() -> None:
    """uvicorn logs it with its traceback; the middleware only answered first."""
    client = TestClient(ServiceMiddleware(_broken_app, metrics=ServiceMetrics()))
    with pytest.raises(RuntimeError, match="a bug in a route"):
        client.get("/v1/anything")
