"""Image captions for the caption-title similarity signal.

Captions supplied with the data (``posts.caption``) are used as they are. When
``encoders.captioner`` names a local transformers image-to-text model directory, posts without a
supplied caption get a generated one. Missing configured weights raise :class:`EncoderUnavailable`
(the caller switches generation off and keeps the supplied captions); no captioner is ever
downloaded or randomly initialised.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from smp_platform.features.encoders import (
    EncoderUnavailable,
    ResolvedWeights,
    configure_threads,
    encoder_id,
    resolve_weights,
    select_device,
    setting_hint,
)

if TYPE_CHECKING:
    from smp_platform.core.config import EncoderSettings

SETTING = "encoders.captioner"


class ImageCaptioner:
    """A transformers image-to-text pipeline over local weights."""

    def __init__(self, pipe: Any, *, encoder_id: str, batch_size: int = 8) -> None:
        self.pipe = pipe
        self.encoder_id = encoder_id
        self.batch_size = batch_size

    @staticmethod
    def _weights(settings: EncoderSettings) -> ResolvedWeights:
        weights = resolve_weights(settings.captioner, setting=SETTING)
        if weights.kind != "dir":
            raise EncoderUnavailable(
                f"captioner {settings.captioner!r} is not a local model directory; set "
                f"{setting_hint(SETTING)} to a transformers image-to-text model directory"
            )
        return weights

    @classmethod
    def identity(cls, settings: EncoderSettings) -> str:
        """The encoder_id the configured weights give, without loading them."""
        weights = cls._weights(settings)
        return encoder_id(f"captioner:{weights.name}", weights)

    @classmethod
    def from_settings(cls, settings: EncoderSettings) -> ImageCaptioner:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        weights = cls._weights(settings)
        configure_threads(settings)
        device = select_device(settings)
        from transformers import pipeline

        try:
            # "image-to-text" is an alias transformers 5 routes to image-text-to-text
            pipe = pipeline("image-text-to-text", model=str(weights.path), device=device)
        except (OSError, ValueError, KeyError) as exc:
            raise EncoderUnavailable(
                f"cannot load the captioner from {weights.path} ({type(exc).__name__}: {exc}); "
                f"fix {setting_hint(SETTING)}"
            ) from exc
        return cls(
            pipe,
            encoder_id=cls.identity(settings),
            batch_size=settings.batch_size,
        )

    def caption(
        self, paths: Sequence[str | os.PathLike[str] | None]
    ) -> tuple[list[str | None], list[str | None]]:
        """Captions (None on failure) and per-path failure reasons, in input order."""
        from PIL import Image

        captions: list[str | None] = [None] * len(paths)
        reasons: list[str | None] = [None] * len(paths)
        images, rows = [], []
        for row, path in enumerate(paths):
            if path is None or not os.path.isfile(path):
                reasons[row] = f"image not found: {path}"
                continue
            try:
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
                rows.append(row)
            except Exception as exc:  # PIL raises many types for bad data
                reasons[row] = f"image unreadable: {path} ({type(exc).__name__}: {exc})"
        if images:
            outputs = self.pipe(images, batch_size=self.batch_size)
            for row, output in zip(rows, outputs, strict=True):
                first = output[0] if isinstance(output, list) else output
                captions[row] = str(first.get("generated_text", "")).strip() or None
        return captions, reasons


def resolve_captions(posts: pd.DataFrame, captioner: ImageCaptioner | None = None) -> pd.Series:
    """One caption per post: the supplied one, else a generated one, else None."""
    supplied = (
        posts["caption"]
        if "caption" in posts
        else pd.Series([None] * len(posts), index=posts.index)
    )
    has_caption = supplied.map(lambda c: isinstance(c, str) and bool(c.strip()))
    captions = supplied.where(has_caption, None).astype(object)
    if captioner is not None and not has_caption.all() and "media_path" in posts:
        todo = posts.index[~has_caption]
        generated, _ = captioner.caption(list(posts.loc[todo, "media_path"]))
        captions.loc[todo] = generated
    return captions
