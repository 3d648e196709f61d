"""The text group: a sentence embedding of the post text (packaged all-MiniLM-L6-v2 by default,
or the CLIP text tower) and the text-side similarities: title-tags, and caption-title when
captions come with the data or a captioner is configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from smp_platform.features.captions import ImageCaptioner, resolve_captions
from smp_platform.features.group import AblationStage, FeatureGroup, FeatureInputs, Input
from smp_platform.features.schema import (
    OPTIONAL_SIMILARITY,
    UNIT_EMBEDDING,
    Dtype,
    Field,
    FieldKind,
    View,
)
from smp_platform.features.signals import compute_text_semantics
from smp_platform.features.text_embedding import TextEncoder

if TYPE_CHECKING:
    from smp_platform.core.config import Settings

SEMANTICS = View(
    "post_text_semantics",
    "Sentence embedding of the post text and text-side similarities",
    (
        Field(
            "text_embedding",
            Dtype.FLOAT32_ARRAY,
            "sentence embedding of the post text (unit norm)",
            rule=UNIT_EMBEDDING,
        ),
        Field(
            "text_tags_similarity",
            Dtype.FLOAT64,
            "cosine(title/post text, tags/suggested words); null when no tags",
            kind=FieldKind.SIMILARITY,
            rule=OPTIONAL_SIMILARITY,
        ),
        Field(
            "caption_title_similarity",
            Dtype.FLOAT64,
            "cosine(generated caption, title); null without captions",
            kind=FieldKind.SIMILARITY,
            rule=OPTIONAL_SIMILARITY,  # null while no captioner is configured
        ),
    ),
)


@dataclass(frozen=True)
class TextModels:
    encoder: TextEncoder
    captioner: ImageCaptioner | None  # None: captions come only with the data


def identity(settings: Settings) -> str:
    enc = settings.encoders
    identity = TextEncoder.identity(enc)
    if enc.captioner:
        # Generated captions feed caption_title_similarity: a new captioner recomputes it.
        identity += "+" + ImageCaptioner.identity(enc)
    return identity


def load(settings: Settings) -> TextModels:
    enc = settings.encoders
    captioner = ImageCaptioner.from_settings(enc) if enc.captioner else None
    return TextModels(TextEncoder.from_settings(enc), captioner)


def compute(inputs: FeatureInputs, models: Any) -> pd.DataFrame:
    captions = resolve_captions(inputs.posts, models.captioner)
    return compute_text_semantics(inputs.posts, models.encoder, captions=captions)


group = FeatureGroup(
    name="text",
    description="sentence embedding of the post text; title-tags and caption-title similarity",
    views=(SEMANTICS,),
    compute=compute,
    # the media file only when a captioner is configured (a draft has none: captions are null)
    reads=frozenset({Input.POST, Input.MEDIA}),
    identity=identity,
    load=load,
    ablation=(
        AblationStage(10, "+ text embedding", features=("text_embedding",)),
        AblationStage(20, "+ adapted text embedding", features=(), adapt=("text_embedding",)),
        AblationStage(
            40,
            "+ inconsistency signals",
            features=("text_tags_similarity", "caption_title_similarity"),
        ),
    ),
)
