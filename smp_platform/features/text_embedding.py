"""Sentence embeddings of post text: packaged all-MiniLM-L6-v2 (384-d) or the CLIP text tower.

``encode`` returns float32 unit vectors, one row per input, in input order. An empty text is
embedded as the empty string (a valid, constant vector); the signals that compare texts treat
empty text as missing instead (see :mod:`smp_platform.features.signals`). Identical texts are
encoded once: real posts repeat titles and tags a lot.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from smp_platform.features.encoders import (
    EncoderUnavailable,
    autocast_dtype,
    configure_accelerator,
    configure_threads,
    encoder_id,
    resolve_weights,
    select_device,
    setting_hint,
)
from smp_platform.features.image_embedding import ImageEncoder

if TYPE_CHECKING:
    from smp_platform.core.config import EncoderSettings

SETTING = "encoders.text_model"
CLIP_TEXT = "clip"  # text_model = "clip": use the CLIP text tower of encoders.clip_weights


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


class TextEncoder:
    """Texts -> (n, dim) float32 unit vectors, with the ``encoder_id`` stored next to them."""

    def __init__(
        self,
        encode_unique: Callable[[list[str]], np.ndarray],
        *,
        encoder_id: str,
        dim: int,
    ) -> None:
        self._encode_unique = encode_unique
        self.encoder_id = encoder_id
        self.dim = int(dim)

    @classmethod
    def identity(cls, settings: EncoderSettings) -> str:
        """The encoder_id the configured weights give, without loading them."""
        if settings.text_model is None:
            raise EncoderUnavailable(
                f"switched off: no text model configured; set {setting_hint(SETTING)}"
            )
        if settings.text_model.strip().lower() == CLIP_TEXT:
            return ImageEncoder.identity(settings) + ":text"
        weights = resolve_weights(settings.text_model, setting=SETTING)
        return encoder_id(f"sentence:{weights.name}", weights)

    @classmethod
    def from_settings(cls, settings: EncoderSettings) -> TextEncoder:
        """The configured sentence encoder; ``text_model="clip"`` uses the CLIP text tower."""
        if settings.text_model is None:
            raise EncoderUnavailable(
                f"switched off: no text model configured; set {setting_hint(SETTING)}"
            )
        if settings.text_model.strip().lower() == CLIP_TEXT:
            clip = ImageEncoder.from_settings(settings)
            return cls(clip.encode_texts, encoder_id=clip.encoder_id + ":text", dim=clip.dim)
        return cls.sentence_transformer(settings)

    @classmethod
    def sentence_transformer(cls, settings: EncoderSettings) -> TextEncoder:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub is reachable: fail fast, not slow
        weights = resolve_weights(settings.text_model, setting=SETTING)
        configure_threads(settings)
        device = select_device(settings)
        from sentence_transformers import SentenceTransformer

        source = str(weights.path) if weights.path is not None else weights.spec
        # bf16 weights on CUDA, not autocast: on an H100 MiniLM ran 4,508 texts/s with bf16
        # weights at batch 256 against 2,281 under bf16 autocast and 2,088 in fp32 at batch 32
        # (min cosine to fp32 0.998 with random weights; benchmarks/README.md). CPU: float32.
        dtype = autocast_dtype(device, settings.precision)
        model_kwargs: dict[str, Any] | None = {"dtype": dtype} if dtype is not None else None
        try:
            model = SentenceTransformer(source, device=str(device), model_kwargs=model_kwargs)
        except (OSError, ValueError) as exc:
            raise EncoderUnavailable(
                f"cannot load sentence encoder {source!r} ({type(exc).__name__}: {exc}); "
                f"the hub is unreachable, so use a local directory or "
                f"packaged:all-MiniLM-L6-v2 in {setting_hint(SETTING)}"
            ) from exc
        model.eval()
        configure_accelerator(device, settings.precision)
        # 256 on CUDA: MiniLM went from 2,223 to 4,015 texts/s on an H100 (issue 9); 32 on CPU
        batch_size = settings.text_batch_for(device.type)

        def encode_unique(texts: list[str]) -> np.ndarray:
            import torch

            with torch.inference_mode():
                vectors = model.encode(
                    texts,
                    batch_size=batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
            return np.asarray(vectors, dtype=np.float32)

        dim = _embedding_dim(model)
        return cls(encode_unique, encoder_id=cls.identity(settings), dim=dim)

    def encode(self, texts: Sequence[str | None]) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors; ``None`` is encoded as ``""``."""
        clean = [text if isinstance(text, str) else "" for text in texts]
        if not clean:
            return np.zeros((0, self.dim), dtype=np.float32)
        unique = list(dict.fromkeys(clean))
        vectors = _unit(self._encode_unique(unique))
        position = {text: i for i, text in enumerate(unique)}
        return vectors[[position[text] for text in clean]]


def _embedding_dim(model: Any) -> int:
    # sentence-transformers renamed the getter; accept either
    getter = getattr(model, "get_embedding_dimension", None)
    if getter is None:
        getter = model.get_sentence_embedding_dimension
    return int(getter())
