"""The service's ASGI middleware: request metrics (by route template and status), the access
log, the request ID, the request-body size limit, and the one-post lookup answered without
FastAPI's routing.

Every response carries ``X-Request-ID``: the client's own when it sent a sane one (1 to 128
visible ASCII characters), else a fresh uuid4 hex. Every request that got an answer is one
record on the ``smp.access`` logger, with the fields ``method``, ``route`` (the template, as in
the metrics: ``/v1/posts/{post_id}/popularity``, never the raw path, which holds post IDs),
``status``, ``latency_ms`` and ``request_id``. ``smp serve`` writes it at INFO to stderr; where
the logger is not enabled (the tests' and the demo's in-thread service) it costs one check.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from starlette.responses import Response

from smp_platform.service.metrics import ServiceMetrics
from smp_platform.service.responses import JSON, invalid_post_id
from smp_platform.service.routers.posts import LOOKUP_ROUTE

# 1,000 IDs of 256 characters, each escaped as \uXXXX at worst, plus JSON punctuation.
MAX_BODY_BYTES = 2 * 1024 * 1024
_LOOKUP_PREFIX, _LOOKUP_SUFFIX = "/v1/posts/", "/popularity"
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode()
# What may be echoed into a response header and a log line unescaped: no spaces, no controls.
_SANE_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")
access_log = logging.getLogger("smp.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ServiceMiddleware:
    """Request metrics (by route template and status), the access log, ``X-Request-ID`` and
    the request-body size limit.

    A pure ASGI middleware: Starlette's BaseHTTPMiddleware costs ~0.3 ms a request here. It
    answers an unhandled error itself (500, JSON, with the request ID the client can quote)
    before Starlette's outer error handler, which would answer without the header, then lets
    the error go on to be logged with its traceback.
    """

    def __init__(
        self,
        app: Any,
        metrics: ServiceMetrics,
        lookup: Callable[[str], Response] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.lookup = lookup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope["headers"])
        id_header = (_REQUEST_ID_KEY, request_id.encode())
        if scope["method"] == "GET" and self.lookup is not None:
            post_id = _lookup_post_id(scope)
            if post_id is not None:
                # The one-post lookup without FastAPI's routing, request object and parameter
                # validation (~0.2 ms of a 0.7 ms request here): an ID the route would accept
                # as is; anything else (too long, empty, a slash) goes the routed way.
                try:
                    response = self.lookup(post_id)
                except Exception:
                    await _send_error(send, 500, _internal_error(request_id), id_header)
                    self._record(scope, LOOKUP_ROUTE, 500, started, request_id)
                    raise
                response.raw_headers.append(id_header)
                try:
                    await response(scope, receive, send)
                finally:
                    self._record(scope, LOOKUP_ROUTE, response.status_code, started, request_id)
                return
        if scope["method"] == "POST":
            body, too_large = await _read_body(receive)
            if body is None:
                return  # the client went away
            if too_large:
                detail = f"request body larger than {MAX_BODY_BYTES:,} bytes"
                await _send_error(send, 413, detail, id_header)
                self._record(scope, "unmatched", 413, started, request_id)
                return
            receive = _replay(body, receive)
        status = 500
        responded = False

        async def send_and_record(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except Exception:
            status = 500
            if not responded:
                await _send_error(send, 500, _internal_error(request_id), id_header)
            raise
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self._record(scope, route, status, started, request_id)

    def _record(
        self, scope: Scope, route: str, status: int, started: float, request_id: str
    ) -> None:
        """The request's metrics and its access-log record."""
        seconds = time.perf_counter() - started
        self.metrics.observe(route, status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            latency_ms = round(seconds * 1000, 3)
            method = scope["method"]
            access_log.info(
                "%s %s %d %.3f ms request_id=%s",
                method,
                route,
                status,
                latency_ms,
                request_id,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "latency_ms": latency_ms,
                    "request_id": request_id,
                },
            )


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` when it is sane, else a fresh uuid4 hex: a client's ID
    ties its own logs to ours; anything else (too long, a space, a control character) could
    forge a log line or bloat it, and is replaced."""
    for name, value in headers:
        if name == _REQUEST_ID_KEY:
            if _SANE_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


def _internal_error(request_id: str) -> str:
    return f"internal error; the service's log has it under request ID {request_id}"


def _lookup_post_id(scope: Scope) -> str | None:
    """The post ID of ``GET /v1/posts/{post_id}/popularity`` when the route would take it as
    is (one path segment, a valid ID, no root path), else None."""
    path: str = scope["path"]
    if not (path.startswith(_LOOKUP_PREFIX) and path.endswith(_LOOKUP_SUFFIX)):
        return None
    post_id = path[len(_LOOKUP_PREFIX) : -len(_LOOKUP_SUFFIX)]
    if "/" in post_id or scope.get("root_path") or invalid_post_id(post_id) is not None:
        return None
    return post_id


async def _read_body(receive: Receive) -> tuple[bytes | None, bool]:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, original: Receive) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()  # the disconnect, when it comes

    return receive


async def _send_error(send: Send, status: int, detail: str, id_header: tuple[bytes, bytes]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        id_header,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
