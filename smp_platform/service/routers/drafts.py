"""``POST /v1/popularity:score``: a draft (a post not published yet, in its source format's
fields) scored from the same feature definitions as the nightly refresh; ``?explain=true`` adds
the SHAP contributions by feature view, ``?best_time=true`` the best hours of the next 48
(:mod:`smp_platform.online.scoring`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smp_platform.online.scorer import Scorer
from smp_platform.online.scoring import DraftScore, DraftScoringUnavailable, score_draft
from smp_platform.service.context import ServiceContext
from smp_platform.service.models import DraftBody, DraftPrediction, ErrorBody
from smp_platform.service.responses import error, json_response
from smp_platform.sources import parse_draft
from smp_platform.sources.draft import Draft, DraftError

RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "not a valid draft of its format"},
    503: {
        "model": ErrorBody,
        "description": "no champion yet, or draft scoring needs encoders this process "
        "lacks (the [features] extra)",
    },
    400: {"model": ErrorBody, "description": "the body could not be parsed"},
    413: {"model": ErrorBody, "description": "request body too large"},
}


def router(ctx: ServiceContext) -> APIRouter:
    routes = APIRouter()

    def score_one(parsed: Draft, scorer: Scorer, explain: bool, best_time: bool) -> DraftScore:
        with ctx.draft_lock:
            return score_draft(
                parsed,
                scorer,
                ctx.authors.current(),
                ctx.settings,
                explain=explain,
                best_time=best_time,
            )

    @routes.post("/v1/popularity:score", response_model=DraftPrediction, responses=RESPONSES)
    async def score(draft: DraftBody, explain: bool = False, best_time: bool = False) -> Response:
        """The champion's popularity for a post not published yet, from the same feature
        definitions as the nightly refresh; ``explain`` adds the SHAP contributions by feature
        view, ``best_time`` the predictions at each hour of the next 48."""
        current = ctx.watcher.champion
        if current is None:
            return ctx.no_champion()
        try:
            parsed = parse_draft(draft.model_dump())
        except DraftError as invalid:
            return error(422, f"invalid draft: {invalid}")
        try:
            result = await run_in_threadpool(
                score_one, parsed, current.extras["scorer"], explain, best_time
            )
        except DraftScoringUnavailable as unavailable:
            return error(503, str(unavailable))
        body = {**result.body(), "model_name": ctx.model_name, "model_version": current.version}
        return json_response(200, body)

    return routes
