"""Which lookups the service's middleware answers without FastAPI's routing: exactly the IDs the
route would take as they are; everything else goes the routed way (and gets its 422 or 404)."""

from __future__ import annotations

import pytest

from smp_platform.service.middleware import _lookup_post_id
from smp_platform.service.responses import MAX_POST_ID_LENGTH


def _scope(path: str, root_path: str = "") -> dict[str, object]:
    return {"type": "http", "method": "GET", "path": path, "root_path": root_path}


@pytest.mark.parametrize(
    ("path", "post_id"),
    [
        ("/v1/posts/POST00004200/popularity", "POST00004200"),
        ("/v1/posts/p\u00e9 1/popularity", "p\u00e9 1"),  # decoded by the server already
        (f"/v1/posts/{'x' * MAX_POST_ID_LENGTH}/popularity", "x" * MAX_POST_ID_LENGTH),
    ],
)
def test_a_valid_id_takes_the_fast_path(path: str, post_id: str) -> None:
    assert _lookup_post_id(_scope(path)) == post_id


@pytest.mark.parametrize(
    "path",
    [
        "/v1/posts//popularity",  # empty: the route's 404
        "/v1/posts/a/b/popularity",  # an encoded slash, decoded: not one segment
        f"/v1/posts/{'x' * (MAX_POST_ID_LENGTH + 1)}/popularity",  # the route's 422
        "/v1/posts/a\x07b/popularity",  # non-printable: 422
        "/v1/posts/POST1/popularity/",
        "/v1/posts/POST1",
        "/v1/posts/popularity:batch",
        "/healthz",
    ],
)
def test_anything_else_goes_the_routed_way(path: str) -> None:
    assert _lookup_post_id(_scope(path)) is None


def test_a_mounted_app_goes_the_routed_way() -> None:
    assert _lookup_post_id(_scope("/v1/posts/P1/popularity", root_path="/api")) is None
