"""The service's request and response bodies (its OpenAPI schema).

A draft's body (``POST /v1/popularity:score``, and ``POST /v1/posts`` with the post's id) is one
model per registered source format, derived from the format's reader: ``format`` and one
object per block of its files (:class:`~smp_platform.sources.draft.DraftBlock`), discriminated
by ``format``. A new format is a new reader; its body appears here by itself.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model

from smp_platform.sources import readers

MAX_BATCH_POSTS = 1000


class Prediction(BaseModel):
    post_id: str
    popularity: float
    model_name: str
    model_version: str
    # the newest event or write time of the post's rows online (ISO-8601 UTC): how old the
    # features behind this answer are (on Redis, the event time: Feast keeps no write time)
    features_as_of: str | None = None


class ErrorBody(BaseModel):
    detail: str


class BatchRequest(BaseModel):
    post_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH_POSTS)


class BatchPrediction(BaseModel):
    post_id: str
    popularity: float
    features_as_of: str | None = None


class BatchError(BaseModel):
    post_id: str
    error: str


class BatchResponse(BaseModel):
    model_name: str
    model_version: str
    predictions: list[BatchPrediction | BatchError]


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
    # per served view, the share of a sample of stored posts the online store holds now, and
    # the last refresh's check of every post (status/online.json)
    online_coverage: dict[str, Any] | None = None
    registry_checked_seconds_ago: float | None
    registry_error: str | None


ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown post, or not refreshed yet"},
    422: {"model": ErrorBody, "description": "invalid request"},
    503: {"model": ErrorBody, "description": "no champion yet, or the online store is down"},
}


def _draft_model(reader: Any) -> type[BaseModel]:
    fields: dict[str, Any] = {"format": (Literal[reader.name], ...)}
    for block in reader.blocks:
        if block.required:
            fields[block.name] = (dict[str, Any], Field(..., description=block.description))
        else:
            fields[block.name] = (
                dict[str, Any] | None,
                Field(None, description=block.description),
            )
    model = create_model(reader.body_model_name(), **fields)
    model.__doc__ = reader.description
    return model


DRAFT_MODELS: tuple[type[BaseModel], ...] = tuple(_draft_model(r) for r in readers())
# one model per format, told apart by "format" (a union of one is the model itself)
DraftBody: Any = (
    Annotated[Union[DRAFT_MODELS], Field(discriminator="format")]  # noqa: UP007
    if len(DRAFT_MODELS) > 1
    else DRAFT_MODELS[0]
)
# The draft body's schema by reference, for routes that read their body by hand (push).
DRAFT_REF: dict[str, Any] = {
    "oneOf": [{"$ref": f"#/components/schemas/{m.__name__}"} for m in DRAFT_MODELS],
    "discriminator": {
        "propertyName": "format",
        "mapping": {r.name: f"#/components/schemas/{r.body_model_name()}" for r in readers()},
    },
}
