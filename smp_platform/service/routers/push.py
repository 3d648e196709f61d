"""``POST /v1/posts`` (bearer token ``service.push_token``; off without one): a fresh post stored
in the warehouse and its request-time features pushed online, so the lookup answers for it at
once; the nightly refresh supersedes the pushed row (:mod:`smp_platform.online.push`)."""

from __future__ import annotations

import hmac
import json
import logging
from contextlib import ExitStack
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import SecretStr, TypeAdapter, ValidationError
from starlette.responses import Response

from smp_platform.core.errors import DataDirBusy
from smp_platform.core.locking import current_holder, writer_lock
from smp_platform.online.push import PostConflict, PushResult, parse_pushed_post, push_post
from smp_platform.service.context import ServiceContext
from smp_platform.service.models import DRAFT_REF, DraftBody, ErrorBody, PushedPost
from smp_platform.service.responses import JSON, error, json_response
from smp_platform.sources.draft import Draft, DraftError

log = logging.getLogger(__name__)

PUSH_OFF = (
    "POST /v1/posts is off: no push token is configured. Set SMP_SERVICE__PUSH_TOKEN (or "
    "[service] push_token in smp.toml) to a secret and send it as 'Authorization: Bearer <token>'"
)
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": PushedPost, "description": "already stored with this content (a retry)"},
    202: {"model": PushedPost, "description": "stored; online after the nightly refresh"},
    401: {"model": ErrorBody, "description": "missing or wrong bearer token"},
    404: {"model": ErrorBody, "description": "pushing is off (no token configured)"},
    409: {"model": ErrorBody, "description": "the post id is stored with other content"},
    422: {"model": ErrorBody, "description": "not a valid post of its format"},
    503: {"model": ErrorBody, "description": "a writing command holds the data dir"},
}


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token`` as its bearer token (compared in
    constant time, as bytes: ``compare_digest`` refuses non-ASCII text)."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))


def _unauthorized(request: Request, configured: SecretStr | None) -> Response | None:
    """The answer to a push without the configured token (None: authorized)."""
    if configured is None or not configured.get_secret_value():
        return error(404, PUSH_OFF)
    if bearer_matches(request.headers.get("authorization"), configured.get_secret_value()):
        return None
    challenge = 'Bearer realm="smp"'
    if request.headers.get("authorization"):
        challenge += ', error="invalid_token"'
    return json_response(
        401,
        {"detail": "a valid bearer token is required: 'Authorization: Bearer <token>'"},
        {"WWW-Authenticate": challenge},
    )


def router(ctx: ServiceContext) -> APIRouter:
    routes = APIRouter()
    draft_body: TypeAdapter[Any] = TypeAdapter(DraftBody)

    def push_one(parsed: Draft) -> PushResult:
        """Store and push under the writer lock, waiting ``push_lock_wait_s`` at most."""
        settings = ctx.settings
        wait = settings.service.push_lock_wait_s
        if not ctx.push_guard.acquire(timeout=wait):
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
                return push_post(settings, parsed, source="POST /v1/posts", gateway=ctx.gateway)
        finally:
            ctx.push_guard.release()
            ctx.authors.invalidate()

    @routes.post(
        "/v1/posts",
        response_model=PushedPost,
        status_code=201,
        summary="Push a fresh post online",
        responses=RESPONSES,
        # The body is read by hand (the token is checked before it is parsed); its schema is
        # the draft's, with the post's id.
        openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": DRAFT_REF}}}},
    )
    async def push(request: Request) -> Response:
        """Store a fresh post (a draft's body that names the post's id) and push its
        request-time features online: the lookup answers for it at once, and the nightly
        refresh's row supersedes the pushed one. Needs ``Authorization: Bearer <token>``."""
        refused = _unauthorized(request, ctx.settings.service.push_token)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.body())
            parsed = parse_pushed_post(draft_body.validate_python(body).model_dump())
        except json.JSONDecodeError as invalid:
            return error(422, f"invalid request: the body is not JSON: {invalid}")
        except ValidationError as invalid:
            first = invalid.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return error(422, f"invalid request: {where}: {first.get('msg', 'invalid')}")
        except DraftError as invalid:
            return error(422, f"invalid post: {invalid}")
        try:
            result = await run_in_threadpool(push_one, parsed)
        except DataDirBusy as busy:
            retry_after = ctx.settings.service.push_retry_after_s
            return error(503, f"cannot store the post now: {busy}", retry_after=retry_after)
        except PostConflict as conflict:
            return error(409, str(conflict))
        status = 202 if not result.online else 201 if result.stored == "inserted" else 200
        headers = {"Location": f"/v1/posts/{result.post_id}/popularity"}
        return json_response(status, result.body(), headers)

    return routes
