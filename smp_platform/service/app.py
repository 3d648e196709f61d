"""The prediction service: the champion's popularity for posts, from the same Feast views it was
trained on (the feature service named by the model version's tag).

- ``GET /v1/posts/{post_id}/popularity`` one post; ``POST /v1/posts/popularity:batch`` up to
  1,000 posts in one online read and one prediction.
- ``POST /v1/popularity:score`` a draft (a post not published yet, in its source format's
  fields): its popularity from the same feature definitions, with ``?explain=true`` the SHAP
  contributions by feature view and with ``?best_time=true`` the best hours of the next 48
  (:mod:`smp_platform.online.drafts`).
- ``POST /v1/posts`` (bearer token ``service.push_token``; off without one) a fresh post: stored
  in the warehouse and its request-time features pushed online, so the lookup answers for it
  at once; the nightly refresh supersedes the pushed row (:mod:`smp_platform.online.push`).
- ``GET /healthz`` liveness, ``GET /readyz`` readiness (champion loaded, online store answering,
  age of the last registry check), ``GET /metrics`` Prometheus.

The champion is checked off the request path (:class:`~smp_platform.service.champion.
ChampionWatcher`); a request reads one reference and never waits for the registry. Online
reads go below Feast's ``get_online_features`` (:mod:`smp_platform.service.reader`) so that a
view being materialized never fails a lookup.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from smp_platform.core.config import Settings
from smp_platform.online.scorer import Scorer
from smp_platform.service.champion import ChampionWatcher, LoadedChampion
from smp_platform.service.metrics import ServiceMetrics
from smp_platform.service.reader import OnlineReader, OnlineStoreUnavailable

log = logging.getLogger(__name__)

MAX_POST_ID_LENGTH = 256
MAX_BATCH_POSTS = 1000
# 1,000 IDs of 256 characters, each escaped as \uXXXX at worst, plus JSON punctuation.
MAX_BODY_BYTES = 2 * 1024 * 1024
RETRY_AFTER_SECONDS = 2
JSON = "application/json"
LOOKUP_ROUTE = "/v1/posts/{post_id}/popularity"
_LOOKUP_PREFIX, _LOOKUP_SUFFIX = "/v1/posts/", "/popularity"


class Prediction(BaseModel):
    post_id: str
    popularity: float
    model_name: str
    model_version: str


class ErrorBody(BaseModel):
    detail: str


class BatchRequest(BaseModel):
    post_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH_POSTS)


class BatchPrediction(BaseModel):
    post_id: str
    popularity: float


class BatchError(BaseModel):
    post_id: str
    error: str


class BatchResponse(BaseModel):
    model_name: str
    model_version: str
    predictions: list[BatchPrediction | BatchError]


class SmpVideoDraft(BaseModel):
    """A draft in SMP-Video's fields: a ``*posts*.jsonl`` row (``pid`` optional), optionally its
    ``*videos*.jsonl`` and ``*users*.jsonl`` rows."""

    format: Literal["smp-video"]
    post: dict[str, Any]
    video: dict[str, Any] | None = None
    user: dict[str, Any] | None = None


class SmpdDraft(BaseModel):
    """A draft in SMPD's fields: its ``_text.json`` and ``_temporalspatial_information.json``
    records, optionally its ``_category.json`` record and ``_user_data.json`` row."""

    format: Literal["smpd"]
    text: dict[str, Any]
    temporalspatial_information: dict[str, Any]
    category: dict[str, Any] | None = None
    user_data: dict[str, Any] | None = None


DraftBody = Annotated[SmpVideoDraft | SmpdDraft, Field(discriminator="format")]


class FeatureContribution(BaseModel):
    feature: str
    value: float | str | None
    contribution: float


class ViewContribution(BaseModel):
    view: str
    contribution: float
    features: list[FeatureContribution]


class HourPrediction(BaseModel):
    post_time: str
    popularity: float


class DraftPrediction(BaseModel):
    popularity: float
    model_name: str
    model_version: str
    author_known: bool
    post_time: str
    not_computed: dict[str, str] | None = None
    base_value: float | None = None
    contributions: list[ViewContribution] | None = None
    best_times: list[HourPrediction] | None = None
    curve: list[HourPrediction] | None = None


class PushedPost(BaseModel):
    post_id: str
    stored: Literal["inserted", "unchanged"]
    online: bool
    pushed_views: list[str]
    already_online: list[str]
    not_pushed: str | None = None


class Health(BaseModel):
    status: str
    model_name: str
    model_version: str | None


class Readiness(BaseModel):
    status: str
    reasons: list[str]
    model_version: str | None
    feature_service: str | None
    online_store: str
    registry_checked_seconds_ago: float | None
    registry_error: str | None


ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown post, or not refreshed yet"},
    422: {"model": ErrorBody, "description": "invalid request"},
    503: {"model": ErrorBody, "description": "no champion yet, or the online store is down"},
}


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, allow_nan=False).encode(), status, headers=headers, media_type=JSON
    )


def _error(status: int, detail: str, *, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return _json(status, {"detail": detail}, headers)


def invalid_post_id(post_id: str) -> str | None:
    """Why ``post_id`` cannot be a post ID, or None when it can."""
    if not post_id:
        return "post_id is empty"
    if len(post_id) > MAX_POST_ID_LENGTH:
        return f"post_id is longer than {MAX_POST_ID_LENGTH} characters ({len(post_id):,})"
    if not post_id.isprintable():
        return "post_id holds a non-printable character"
    return None


PUSH_OFF = (
    "POST /v1/posts is off: no push token is configured. Set SMP_SERVICE__PUSH_TOKEN (or "
    "[service] push_token in smp.toml) to a secret and send it as 'Authorization: Bearer <token>'"
)


DRAFT_REF = {
    "oneOf": [
        {"$ref": "#/components/schemas/SmpVideoDraft"},
        {"$ref": "#/components/schemas/SmpdDraft"},
    ],
    "discriminator": {
        "propertyName": "format",
        "mapping": {
            "smp-video": "#/components/schemas/SmpVideoDraft",
            "smpd": "#/components/schemas/SmpdDraft",
        },
    },
}


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token`` as its bearer token (compared in
    constant time, as bytes: ``compare_digest`` refuses non-ASCII text)."""
    import hmac

    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))


def create_app(settings: Settings, *, poll_seconds: float = 5.0) -> FastAPI:
    import threading

    from smp_platform.core.errors import DataDirBusy
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.online.drafts import (
        AuthorDirectory,
        DraftError,
        DraftScoringUnavailable,
        parse_draft,
        score_draft,
    )
    from smp_platform.online.push import PostConflict, parse_pushed_post

    gateway = FeatureStoreGateway(settings)
    draft_body: TypeAdapter[Any] = TypeAdapter(DraftBody)
    retry_after = settings.service.push_retry_after_s
    # Held by a push while it writes the warehouse: one push at a time in this process (the
    # writer lock is re-entrant per process, not per thread), and no read-only open of the
    # warehouse by the author index beside it (DuckDB refuses both in one process).
    push_guard = threading.Lock()
    authors = AuthorDirectory(settings.warehouse_path, guard=push_guard)
    # The encoders use every core already: drafts are scored one at a time per process.
    draft_lock = threading.Lock()
    metrics = ServiceMetrics()
    model_name = settings.train.model_name

    def prepare(champion: LoadedChampion) -> None:
        # Runs in the watcher thread: a version whose model or views cannot be compiled is
        # "broken" and the previous one keeps serving.
        champion.extras["scorer"] = Scorer(champion.predictor)
        champion.extras["reader"] = OnlineReader(gateway.store, champion.feature_service)
        metrics.model_version.set(float(champion.version) if champion.version.isdigit() else -1)
        # The loaded model, MLflow, Feast and sklearn are millions of long-lived objects: left
        # to the cyclic GC, its full collections landed in requests (a 1,000-post read went
        # from 8 ms to 660 ms). Frozen objects are never scanned again.
        gc.collect()
        gc.freeze()

    watcher = ChampionWatcher(settings, poll_seconds, prepare)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher.check_once()  # before the first request; a failure leaves the service not ready
        watcher.start()
        try:
            yield
        finally:
            watcher.stop()

    app = FastAPI(
        title="smp-platform prediction service",
        version="1",
        lifespan=lifespan,
        description="Popularity of social media posts from the @champion model.",
    )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"invalid request: {where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> Response:
        return _json(error.status_code, {"detail": str(error.detail)}, error.headers)

    def no_champion() -> Response:
        detail = f"no @champion version of {model_name} is loaded"
        if watcher.state.last_error:
            detail += f" (registry: {watcher.state.last_error})"
        else:
            detail += "; run `smp train` and `smp promote`"
        return _error(503, detail, retry_after=RETRY_AFTER_SECONDS)

    def store_down(error: OnlineStoreUnavailable) -> Response:
        metrics.online_store_errors.inc()
        log.warning("online store unavailable: %s", error)
        return _error(
            503, f"the online store is unavailable: {error}", retry_after=RETRY_AFTER_SECONDS
        )

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Response:
        """Liveness: the process answers (says nothing about the model or the store)."""
        current = watcher.champion
        return _json(
            200,
            {
                "status": "ok",
                "model_name": model_name,
                "model_version": current.version if current else None,
            },
        )

    @app.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz() -> Response:
        """Readiness: a champion is loaded and the online store answers."""
        current = watcher.champion
        reasons = []
        store = "not checked"
        if current is None:
            reasons.append(f"no @champion version of {model_name} is loaded")
        else:
            try:
                current.extras["reader"].probe()
                store = "ok"
            except OnlineStoreUnavailable as error:
                metrics.online_store_errors.inc()
                store = f"unavailable: {error}"
                reasons.append(f"the online store is unavailable: {error}")
        age = watcher.seconds_since_check()
        body = {
            "status": "not ready" if reasons else "ready",
            "reasons": reasons,
            "model_version": current.version if current else None,
            "feature_service": current.feature_service if current else None,
            "online_store": store,
            "registry_checked_seconds_ago": None if age is None else round(age, 3),
            "registry_error": watcher.state.last_error,
        }
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if reasons else None
        return _json(503 if reasons else 200, body, headers)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return metrics.response()

    def lookup(post_id: str) -> Response:
        """``GET /v1/posts/{post_id}/popularity``: the route below and the middleware's fast
        path (which skips FastAPI's routing for a valid ID) both answer through here."""
        why = invalid_post_id(post_id)
        if why:
            return _error(422, why)
        current = watcher.champion
        if current is None:
            return no_champion()
        try:
            block = current.extras["reader"].read([post_id])
        except OnlineStoreUnavailable as error:
            return store_down(error)
        if not block.found[0]:
            return _error(
                404,
                f"post {post_id!r} has no features in the online store: "
                "unknown post, or not refreshed yet",
            )
        value = float(current.extras["scorer"].predict(block, np.array([0]))[0])
        return _json(
            200,
            {
                "post_id": post_id,
                "popularity": value,
                "model_name": model_name,
                "model_version": current.version,
            },
        )

    @app.get(LOOKUP_ROUTE, response_model=Prediction, responses=ERRORS)
    async def popularity(
        post_id: Annotated[str, PathParam(max_length=MAX_POST_ID_LENGTH)],
    ) -> Response:
        """The champion's popularity prediction for one post."""
        return lookup(post_id)

    # The middleware answers a valid one-post lookup through the same function.
    app.add_middleware(ServiceMiddleware, metrics=metrics, lookup=lookup)  # type: ignore[arg-type]

    @app.post(
        "/v1/posts/popularity:batch",
        response_model=BatchResponse,
        responses={
            **ERRORS,
            400: {"model": ErrorBody, "description": "the body could not be parsed"},
            413: {"model": ErrorBody, "description": "request body too large"},
        },
    )
    async def popularity_batch(request: BatchRequest) -> Response:
        """Predictions for up to 1,000 posts in request order; an unknown or invalid post gets
        an ``error`` entry instead of failing the call."""
        current = watcher.champion
        if current is None:
            return no_champion()
        post_ids = request.post_ids
        errors = {p: why for p in dict.fromkeys(post_ids) if (why := invalid_post_id(p))}
        valid = [p for p in dict.fromkeys(post_ids) if p not in errors]
        values: dict[str, float] = {}
        if valid:
            try:
                block = current.extras["reader"].read(valid)
            except OnlineStoreUnavailable as error:
                return store_down(error)
            found = np.flatnonzero(block.found)
            predictions = current.extras["scorer"].predict(block, found).tolist()
            values = {valid[i]: v for i, v in zip(found.tolist(), predictions, strict=True)}
        entries = []
        for p in post_ids:
            if p in values:
                entries.append({"post_id": p, "popularity": values[p]})
            else:
                why = errors.get(p) or "no features in the online store: unknown post, or not "
                entries.append({"post_id": p, "error": errors.get(p) or why + "refreshed yet"})
        return _json(
            200,
            {"model_name": model_name, "model_version": current.version, "predictions": entries},
        )

    def score_one(parsed: Any, scorer: Scorer, explain: bool, best_time: bool) -> Any:
        with draft_lock:
            return score_draft(
                parsed, scorer, authors.current(), settings, explain=explain, best_time=best_time
            )

    @app.post(
        "/v1/popularity:score",
        response_model=DraftPrediction,
        responses={
            422: {"model": ErrorBody, "description": "not a valid draft of its format"},
            503: {
                "model": ErrorBody,
                "description": "no champion yet, or draft scoring needs encoders this process "
                "lacks (the [features] extra)",
            },
            400: {"model": ErrorBody, "description": "the body could not be parsed"},
            413: {"model": ErrorBody, "description": "request body too large"},
        },
    )
    async def score(draft: DraftBody, explain: bool = False, best_time: bool = False) -> Response:
        """The champion's popularity for a post not published yet, from the same feature
        definitions as the nightly refresh; ``explain`` adds the SHAP contributions by feature
        view, ``best_time`` the predictions at each hour of the next 48."""
        current = watcher.champion
        if current is None:
            return no_champion()
        try:
            parsed = parse_draft(draft.model_dump())
        except DraftError as error:
            return _error(422, f"invalid draft: {error}")
        try:
            result = await run_in_threadpool(
                score_one, parsed, current.extras["scorer"], explain, best_time
            )
        except DraftScoringUnavailable as error:
            return _error(503, str(error))
        body = {**result.body(), "model_name": model_name, "model_version": current.version}
        return _json(200, body)

    push_errors: dict[int | str, dict[str, Any]] = {
        200: {"model": PushedPost, "description": "already stored with this content (a retry)"},
        202: {"model": PushedPost, "description": "stored; online after the nightly refresh"},
        401: {"model": ErrorBody, "description": "missing or wrong bearer token"},
        404: {"model": ErrorBody, "description": "pushing is off (no token configured)"},
        409: {"model": ErrorBody, "description": "the post id is stored with other content"},
        422: {"model": ErrorBody, "description": "not a valid post of its format"},
        503: {"model": ErrorBody, "description": "a writing command holds the data dir"},
    }

    def push_one(parsed: Any) -> Any:
        """Store and push under the writer lock, waiting ``push_lock_wait_s`` at most."""
        from contextlib import ExitStack

        from smp_platform.core.locking import current_holder, writer_lock
        from smp_platform.online.push import push_post

        wait = settings.service.push_lock_wait_s
        if not push_guard.acquire(timeout=wait):
            raise DataDirBusy("another push of this service is still writing")
        try:
            with ExitStack() as held:
                try:
                    held.enter_context(
                        writer_lock(settings.root, "serve: POST /v1/posts", wait, say=log.info)
                    )
                except DataDirBusy:
                    holder = current_holder(settings.root) or "another writing command"
                    raise DataDirBusy(
                        f"the data dir is in use by {holder} (waited {wait:g} s, "
                        "service.push_lock_wait_s)"
                    ) from None
                return push_post(settings, parsed, source="POST /v1/posts", gateway=gateway)
        finally:
            push_guard.release()
            authors.invalidate()

    @app.post(
        "/v1/posts",
        response_model=PushedPost,
        status_code=201,
        summary="Push a fresh post online",
        responses=push_errors,
        # The body is read by hand (the token is checked before it is parsed); its schema is
        # the draft's, with the post's id.
        openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": DRAFT_REF}}}},
    )
    async def push(request: Request) -> Response:
        """Store a fresh post (a draft's body that names the post's id) and push its
        request-time features online: the lookup answers for it at once, and the nightly
        refresh's row supersedes the pushed one. Needs ``Authorization: Bearer <token>``."""
        configured = settings.service.push_token
        if configured is None or not configured.get_secret_value():
            return _error(404, PUSH_OFF)
        if not bearer_matches(request.headers.get("authorization"), configured.get_secret_value()):
            challenge = 'Bearer realm="smp"'
            if request.headers.get("authorization"):
                challenge += ', error="invalid_token"'
            return _json(
                401,
                {"detail": "a valid bearer token is required: 'Authorization: Bearer <token>'"},
                {"WWW-Authenticate": challenge},
            )
        try:
            body = json.loads(await request.body())
            parsed = parse_pushed_post(draft_body.validate_python(body).model_dump())
        except json.JSONDecodeError as error:
            return _error(422, f"invalid request: the body is not JSON: {error}")
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return _error(422, f"invalid request: {where}: {first.get('msg', 'invalid')}")
        except DraftError as error:
            return _error(422, f"invalid post: {error}")
        try:
            result = await run_in_threadpool(push_one, parsed)
        except DataDirBusy as error:
            return _error(503, f"cannot store the post now: {error}", retry_after=retry_after)
        except PostConflict as error:
            return _error(409, str(error))
        status = 202 if not result.online else 201 if result.stored == "inserted" else 200
        headers = {"Location": f"/v1/posts/{result.post_id}/popularity"}
        return _json(status, result.body(), headers)

    app.state.watcher = watcher
    app.state.metrics = metrics
    return app


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ServiceMiddleware:
    """Request metrics (by route template and status) and the request-body size limit.

    A pure ASGI middleware: Starlette's BaseHTTPMiddleware costs ~0.3 ms a request here.
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
        status = 500
        if scope["method"] == "GET" and self.lookup is not None:
            post_id = _lookup_post_id(scope)
            if post_id is not None:
                # The one-post lookup without FastAPI's routing, request object and parameter
                # validation (~0.2 ms of a 0.7 ms request here): an ID the route would accept
                # as is; anything else (too long, empty, a slash) goes the routed way.
                try:
                    response = self.lookup(post_id)
                    status = response.status_code
                    await response(scope, receive, send)
                finally:
                    self.metrics.observe(LOOKUP_ROUTE, status, time.perf_counter() - started)
                return
        if scope["method"] == "POST":
            body, too_large = await _read_body(receive)
            if body is None:
                return  # the client went away
            if too_large:
                await _send_error(send, 413, f"request body larger than {MAX_BODY_BYTES:,} bytes")
                self.metrics.observe("unmatched", 413, time.perf_counter() - started)
                return
            receive = _replay(body, receive)

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(label, status, time.perf_counter() - started)


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


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- running it -------------------------------------------------------------------------------
POLL_SECONDS_ENV = "SMP_SERVICE_POLL_SECONDS"


def _one_blas_thread() -> None:
    """Concurrency comes from requests and worker processes: multithreaded BLAS on a busy 2-core
    machine made a 1,000-post batch's (1000 x 384) adapter matmul 37 ms instead of 6 ms."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def app_from_environment() -> FastAPI:
    """The app for a uvicorn worker process: settings from ``SMP_*`` (``serve`` sets them)."""
    import os

    _one_blas_thread()
    return create_app(Settings(), poll_seconds=float(os.environ.get(POLL_SECONDS_ENV, "5")))


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    poll_seconds: float = 5.0,
    workers: int = 1,
    shutdown_seconds: float = 5.0,
) -> None:
    """Run the service with uvicorn until SIGTERM/SIGINT, then drain for ``shutdown_seconds``.

    uvloop + httptools when installed (measured: ~30% more requests/s than asyncio + h11),
    no access log (one line per request costs more than the lookup).
    """
    import os

    import uvicorn

    _one_blas_thread()
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,
        "timeout_graceful_shutdown": shutdown_seconds,
        "log_level": "info",
    }
    if workers > 1:
        # Worker processes rebuild the settings from the environment.
        os.environ["SMP_DATA_DIR"] = str(settings.root)
        os.environ[POLL_SECONDS_ENV] = str(poll_seconds)
        uvicorn.run(
            "smp_platform.service.app:app_from_environment",
            factory=True,
            workers=workers,
            **options,
        )
    else:
        uvicorn.run(create_app(settings, poll_seconds=poll_seconds), **options)
