"""The prediction service: the champion's popularity for posts, from the same Feast views it was
trained on (the feature service named by the model version's tag). This module wires the app;
each resource has its router (:mod:`smp_platform.service.routers`):

- ``GET /v1/posts/{post_id}/popularity`` one post; ``POST /v1/posts/popularity:batch`` up to
  1,000 posts in one online read and one prediction (``routers/posts.py``).
- ``POST /v1/popularity:score`` a draft (a post not published yet, in its source format's
  fields), with ``?explain=true`` and ``?best_time=true`` (``routers/drafts.py``).
- ``POST /v1/posts`` (bearer token ``service.push_token``; off without one) a fresh post,
  stored and its request-time features pushed online (``routers/push.py``).
- ``GET /healthz``, ``GET /readyz``, ``GET /metrics`` (``routers/health.py``).

The champion is checked off the request path (:class:`~smp_platform.service.champion.
ChampionWatcher`); a request reads one reference and never waits for the registry. Online
reads go below Feast's ``get_online_features`` (:mod:`smp_platform.service.reader`) so that a
view being materialized never fails a lookup.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from smp_platform.core.config import Settings
from smp_platform.core.logs import service_log_config, use_log_format
from smp_platform.service.context import ServiceContext
from smp_platform.service.metrics import shared_metrics_dir
from smp_platform.service.middleware import ServiceMiddleware
from smp_platform.service.responses import error, json_response
from smp_platform.service.routers import drafts, health, posts, push


def create_app(settings: Settings, *, poll_seconds: float = 5.0) -> FastAPI:
    ctx = ServiceContext(settings, poll_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ctx.watcher.check_once()  # before the first request; a failure leaves it not ready
        ctx.watcher.start()
        try:
            yield
        finally:
            ctx.watcher.stop()
            ctx.metrics.shutdown()

    app = FastAPI(
        title="smp-platform prediction service",
        version="1",
        lifespan=lifespan,
        description="Popularity of social media posts from the @champion model.",
    )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, invalid: RequestValidationError) -> Response:
        first = invalid.errors()[0] if invalid.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, f"invalid request: {where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, failure: StarletteHTTPException) -> Response:
        return json_response(failure.status_code, {"detail": str(failure.detail)}, failure.headers)

    lookup = posts.lookup_function(ctx)
    for routes in (
        health.router(ctx),
        posts.router(ctx, lookup),
        drafts.router(ctx),
        push.router(ctx),
    ):
        app.include_router(routes)
    # The middleware answers a valid one-post lookup through the same function as the route.
    app.add_middleware(ServiceMiddleware, metrics=ctx.metrics, lookup=lookup)  # type: ignore[arg-type]
    app.state.watcher = ctx.watcher
    app.state.metrics = ctx.metrics
    return app


# -- running it -------------------------------------------------------------------------------
POLL_SECONDS_ENV = "SMP_SERVICE_POLL_SECONDS"


def _one_blas_thread() -> None:
    """Concurrency comes from requests and worker processes: multithreaded BLAS on a busy 2-core
    machine made a 1,000-post batch's (1000 x 384) adapter matmul 37 ms instead of 6 ms."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def app_from_environment() -> FastAPI:
    """The app for a uvicorn worker process: settings from ``SMP_*`` (``serve`` sets them)."""
    _one_blas_thread()
    settings = Settings()
    use_log_format(settings.log_format)  # uvicorn configured the handlers; warnings too
    return create_app(settings, poll_seconds=float(os.environ.get(POLL_SECONDS_ENV, "5")))


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

    uvloop + httptools when installed (measured: ~30% more requests/s than asyncio + h11).
    Logs in ``settings.log_format``, in the parent and in every worker; uvicorn's own access
    log is off (its line per request cost more than the lookup), the middleware's ``smp.access``
    record (route template, status, latency, request ID) takes its place. With workers, their
    metrics are shared through a fresh directory (:func:`shared_metrics_dir`), removed on exit.
    """
    import uvicorn

    _one_blas_thread()
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,
        "timeout_graceful_shutdown": shutdown_seconds,
        "log_level": "info",
        "log_config": service_log_config(settings.log_format),
    }
    if workers > 1:
        # Worker processes rebuild the settings from the environment.
        os.environ["SMP_DATA_DIR"] = str(settings.root)
        os.environ["SMP_LOG_FORMAT"] = settings.log_format
        os.environ[POLL_SECONDS_ENV] = str(poll_seconds)
        # Set before uvicorn spawns the workers: prometheus_client reads it when imported.
        with shared_metrics_dir():
            uvicorn.run(
                "smp_platform.service.app:app_from_environment",
                factory=True,
                workers=workers,
                **options,
            )
    else:
        uvicorn.run(create_app(settings, poll_seconds=poll_seconds), **options)
