"""JSON answers of the service: bodies, errors with a reason (and Retry-After when a retry can
help), and the checks every route shares."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

JSON = "application/json"
MAX_POST_ID_LENGTH = 256
RETRY_AFTER_SECONDS = 2


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, allow_nan=False).encode(), status, headers=headers, media_type=JSON
    )


def error(status: int, detail: str, *, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return json_response(status, {"detail": detail}, headers)


def invalid_post_id(post_id: str) -> str | None:
    """Why ``post_id`` cannot be a post ID, or None when it can."""
    if not post_id:
        return "post_id is empty"
    if len(post_id) > MAX_POST_ID_LENGTH:
        return f"post_id is longer than {MAX_POST_ID_LENGTH} characters ({len(post_id):,})"
    if not post_id.isprintable():
        return "post_id holds a non-printable character"
    return None
