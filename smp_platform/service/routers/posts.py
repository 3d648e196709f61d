"""``GET /v1/posts/{post_id}/popularity`` (one post) and ``POST /v1/posts/popularity:batch`` (up
to 1,000 posts in one online read and one prediction): the champion's popularity from the same
Feast views it was trained on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter
from fastapi import Path as PathParam
from starlette.responses import Response

from smp_platform.service.context import ServiceContext
from smp_platform.service.models import BatchRequest, BatchResponse, ErrorBody, Prediction
from smp_platform.service.reader import OnlineStoreUnavailable
from smp_platform.service.responses import (
    MAX_POST_ID_LENGTH,
    error,
    invalid_post_id,
    json_response,
)

LOOKUP_ROUTE = "/v1/posts/{post_id}/popularity"
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown post, or not refreshed yet"},
    422: {"model": ErrorBody, "description": "invalid request"},
    503: {"model": ErrorBody, "description": "no champion yet, or the online store is down"},
}
NOT_ONLINE = "no features in the online store: unknown post, or not refreshed yet"


def lookup_function(ctx: ServiceContext) -> Callable[[str], Response]:
    """The one-post lookup; the route and the middleware's fast path (which skips FastAPI's
    routing for a valid ID) both answer through it."""

    def lookup(post_id: str) -> Response:
        why = invalid_post_id(post_id)
        if why:
            return error(422, why)
        current = ctx.watcher.champion
        if current is None:
            return ctx.no_champion()
        try:
            block = current.extras["reader"].read([post_id])
        except OnlineStoreUnavailable as unavailable:
            return ctx.store_down(unavailable)
        if not block.found[0]:
            return error(404, f"post {post_id!r} has {NOT_ONLINE}")
        value = float(current.extras["scorer"].predict(block, np.array([0]))[0])
        return json_response(
            200,
            {
                "post_id": post_id,
                "popularity": value,
                "model_name": ctx.model_name,
                "model_version": current.version,
                "features_as_of": block.as_of[0] if block.as_of else None,
            },
        )

    return lookup


def router(ctx: ServiceContext, lookup: Callable[[str], Response]) -> APIRouter:
    routes = APIRouter()

    @routes.get(LOOKUP_ROUTE, response_model=Prediction, responses=ERRORS)
    async def popularity(
        post_id: Annotated[str, PathParam(max_length=MAX_POST_ID_LENGTH)],
    ) -> Response:
        """The champion's popularity prediction for one post."""
        return lookup(post_id)

    @routes.post(
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
        current = ctx.watcher.champion
        if current is None:
            return ctx.no_champion()
        post_ids = request.post_ids
        errors = {p: why for p in dict.fromkeys(post_ids) if (why := invalid_post_id(p))}
        valid = [p for p in dict.fromkeys(post_ids) if p not in errors]
        values: dict[str, float] = {}
        as_of: dict[str, str | None] = {}
        if valid:
            try:
                block = current.extras["reader"].read(valid)
            except OnlineStoreUnavailable as unavailable:
                return ctx.store_down(unavailable)
            found = np.flatnonzero(block.found)
            predictions = current.extras["scorer"].predict(block, found).tolist()
            values = {valid[i]: v for i, v in zip(found.tolist(), predictions, strict=True)}
            if block.as_of is not None:
                as_of = dict(zip(valid, block.as_of, strict=True))
        entries: list[dict[str, Any]] = [
            {"post_id": p, "popularity": values[p], "features_as_of": as_of.get(p)}
            if p in values
            else {"post_id": p, "error": errors.get(p) or NOT_ONLINE}
            for p in post_ids
        ]
        body = {
            "model_name": ctx.model_name,
            "model_version": current.version,
            "predictions": entries,
        }
        return json_response(200, body)

    return routes
