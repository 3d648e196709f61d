"""The image group: the CLIP image embedding of the post's media file and the image-title
(in)consistency, the paper's signal. Needs CLIP weights (``encoders.clip_weights``; none are
obtainable offline, so it is off by default) and the media file, which a draft has none of."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smp_platform.features.group import (
    AblationStage,
    FeatureGroup,
    FeatureInputs,
    GroupResult,
    Input,
)
from smp_platform.features.image_embedding import ImageEncoder
from smp_platform.features.schema import SIMILARITY, UNIT_EMBEDDING, Dtype, Field, FieldKind, View
from smp_platform.features.signals import compute_image_semantics

if TYPE_CHECKING:
    from smp_platform.core.config import Settings

SEMANTICS = View(
    "post_image_semantics",
    "CLIP image embedding and image-title (in)consistency",
    (
        Field(
            "image_embedding",
            Dtype.FLOAT32_ARRAY,
            "CLIP image embedding (unit norm)",
            rule=UNIT_EMBEDDING,
        ),
        Field(
            "image_title_similarity",
            Dtype.FLOAT64,
            "cosine(CLIP image, CLIP text of the title): the inconsistency signal",
            kind=FieldKind.SIMILARITY,
            rule=SIMILARITY,
        ),
    ),
)
NO_MEDIA = "a draft carries no media file: image features are null, as for an unreadable image"


def identity(settings: Settings) -> str:
    return ImageEncoder.identity(settings.encoders)


def load(settings: Settings) -> ImageEncoder:
    return ImageEncoder.from_settings(settings.encoders)


def compute(inputs: FeatureInputs, encoder: Any) -> GroupResult:
    # Posts whose image cannot be read get no row and a reason; the refresh quarantines them.
    frame, unreadable = compute_image_semantics(inputs.posts, encoder)
    return GroupResult(frame, list(zip(unreadable["post_id"], unreadable["reason"], strict=True)))


group = FeatureGroup(
    name="image",
    description="CLIP image embedding and image-title similarity",
    views=(SEMANTICS,),
    compute=compute,
    reads=frozenset({Input.POST, Input.MEDIA}),
    identity=identity,
    load=load,
    request_time=False,
    not_at_request_time=NO_MEDIA,
    ablation=(
        AblationStage(40, "+ inconsistency signals", features=("image_title_similarity",)),
        AblationStage(
            50, "+ image embedding", features=("image_embedding",), adapt=("image_embedding",)
        ),
    ),
)
