"""``GET /healthz`` (liveness), ``GET /readyz`` (readiness: a champion is loaded and the online
store answers, the age of the last registry check) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from smp_platform.service.context import ServiceContext
from smp_platform.service.models import Health, Readiness
from smp_platform.service.reader import OnlineStoreUnavailable
from smp_platform.service.responses import RETRY_AFTER_SECONDS, json_response


def router(ctx: ServiceContext) -> APIRouter:
    routes = APIRouter()

    @routes.get("/healthz", response_model=Health)
    async def healthz() -> Response:
        """Liveness: the process answers (says nothing about the model or the store)."""
        current = ctx.watcher.champion
        return json_response(
            200,
            {
                "status": "ok",
                "model_name": ctx.model_name,
                "model_version": current.version if current else None,
            },
        )

    @routes.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz() -> Response:
        """Readiness: a champion is loaded and the online store answers."""
        current = ctx.watcher.champion
        reasons = []
        store = "not checked"
        coverage = None
        if current is None:
            reasons.append(f"no @champion version of {ctx.model_name} is loaded")
        else:
            try:
                current.extras["reader"].probe()
                store = "ok"
            except OnlineStoreUnavailable as unavailable:
                ctx.metrics.online_store_errors.inc()
                store = f"unavailable: {unavailable}"
                reasons.append(f"the online store is unavailable: {unavailable}")
            else:
                coverage = ctx.coverage.coverage(current.extras["reader"])
                if coverage.empty:
                    reasons.append(
                        f"the online store holds none of {sum(coverage.sampled.values())} "
                        "sampled stored rows (lost, flushed or replaced): run `smp materialize` "
                        "(docs/OPERATIONS.md)"
                    )
        age = ctx.watcher.seconds_since_check()
        body = {
            "status": "not ready" if reasons else "ready",
            "reasons": reasons,
            "model_version": current.version if current else None,
            "feature_service": current.feature_service if current else None,
            "online_store": store,
            "online_coverage": None if coverage is None else coverage.body(),
            "registry_checked_seconds_ago": None if age is None else round(age, 3),
            "registry_error": ctx.watcher.state.last_error,
        }
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if reasons else None
        return json_response(503 if reasons else 200, body, headers)

    @routes.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        current = ctx.watcher.champion
        coverage = ctx.coverage.coverage(current.extras["reader"]) if current else None
        refreshed = ctx.coverage.refresh_status()
        ctx.metrics.update_status(
            coverage.ratios if coverage is not None else {},
            refreshed["last_success_at"],
            current.since if current else None,
            refreshed["drift_share"],
        )
        return ctx.metrics.response()

    return routes
