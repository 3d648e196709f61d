"""Sentence embeddings of post text: packaged all-MiniLM-L6-v2 (384-d) or the CLIP text tower.

``encode`` returns float32 unit vectors, one row per input, in input order. An empty text is
embedded as the empty string (a valid, constant vector); the signals that compare texts treat
empty text as missing instead (see :mod:`smp_platform.features.signals`). Identical texts are
encoded once: real posts repeat titles and tags a lot.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from smp_platform.features.encoders import (
    EncoderUnavailable,
    autocast,
    autocast_dtype,
    bf16_linear_weights,
    configure_accelerator,
    configure_threads,
    encoder_id,
    precision_tag,
    resolve_weights,
    select_device,
    setting_hint,
    uses_bf16,
    width_batches,
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
        tag = precision_tag(settings.precision, auto=False)  # bf16 only when asked for
        return encoder_id(f"sentence:{weights.name}", weights) + tag

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
        import torch
        from sentence_transformers import SentenceTransformer

        source = str(weights.path) if weights.path is not None else weights.spec
        on_cuda = device.type == "cuda"
        if on_cuda:
            dtype = autocast_dtype(device, settings.precision)
        else:
            dtype = torch.bfloat16 if uses_bf16(settings.precision, auto=False) else None
        # bf16 weights on CUDA, not autocast: on an H100 MiniLM ran 4,508 texts/s with bf16
        # weights at batch 256 against 2,281 under bf16 autocast and 2,088 in fp32 at batch 32
        # (min cosine to fp32 0.998 with random weights; benchmarks/README.md). On a CPU,
        # float32 unless precision = "bf16": autocast ran MiniLM at 1.02x float32's texts/s on
        # the bundled posts (min cosine 0.99994), not worth other stored numbers.
        model_kwargs: dict[str, Any] | None = {"dtype": dtype} if on_cuda and dtype else None
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
        direct = MeanPooledTower.of(
            model, device, None if on_cuda else dtype, token_budget=batch_size * 64
        )
        if direct is not None:
            if dtype is not None and not on_cuda:
                bf16_linear_weights(direct.model)  # the same numbers, cast once (not per call)
            encode_unique: Callable[[list[str]], np.ndarray] = direct
        else:  # another pipeline than transformer -> mean pooling -> normalize: its own encode

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


class MeanPooledTower:
    """A sentence-transformers pipeline of transformer -> mean pooling -> L2 normalisation
    (all-MiniLM-L6-v2's), run without ``SentenceTransformer.encode``: every text tokenized
    once, each padded to a width of its own length (powers of two, so a text gives the same
    bits alone or in a refresh batch, under bf16 too), batched by width under a token budget,
    the forward under the tower's autocast, pooling over real tokens only.

    Float32 gives ``encode``'s vectors to 2e-7 (the same sums in batches of other shapes) at
    its speed (91 against 92 texts/s on 400 bundled post texts, 2 cores; MiniLM already runs
    at 63% of the float32 GEMM peak there); what it adds is that a draft's text encodes to
    the stored post's vector (benchmarks/encoders.py --stages limit)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_length: int,
        token_budget: int,
        device: Any,
        dtype: Any,
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.token_budget = int(max_length), max(1, int(token_budget))
        self.device, self.dtype = device, dtype

    @classmethod
    def of(cls, st: Any, device: Any, dtype: Any, *, token_budget: int) -> MeanPooledTower | None:
        """The tower of a SentenceTransformer of exactly that pipeline, else None."""
        modules = [type(m).__name__ for m in st]
        if modules != ["Transformer", "Pooling", "Normalize"]:
            return None
        pooling = st[1]
        modes = {k: v for k, v in vars(pooling).items() if k.startswith("pooling_mode_")}
        if not modes.get("pooling_mode_mean_tokens") or sum(bool(v) for v in modes.values()) != 1:
            return None
        auto_model = getattr(st[0], "auto_model", None)
        if auto_model is None:
            return None
        return cls(auto_model, st.tokenizer, st.max_seq_length, token_budget, device, dtype)

    def batches(self, lengths: np.ndarray) -> Iterator[tuple[np.ndarray, int]]:
        """(row indices, padded width): each text at a width of its own length
        (``encoders.padded_widths``), shortest first, rows x width under the budget."""
        return width_batches(lengths, self.max_length, self.token_budget)

    def __call__(self, texts: list[str]) -> np.ndarray:
        import torch

        ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        lengths = np.array([len(row) for row in ids], dtype=np.int64)
        dim = int(self.model.config.hidden_size)
        out = np.zeros((len(texts), dim), dtype=np.float32)
        with torch.inference_mode(), autocast(self.device, self.dtype):
            for rows, width in self.batches(lengths):
                tokens = torch.zeros((len(rows), width), dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for r, i in enumerate(rows.tolist()):
                    tokens[r, : lengths[i]] = torch.tensor(ids[i])
                    mask[r, : lengths[i]] = 1
                tokens, mask = tokens.to(self.device), mask.to(self.device)
                hidden = self.model(input_ids=tokens, attention_mask=mask).last_hidden_state
                hidden = hidden.float() * mask[..., None]
                pooled = hidden.sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1)
                out[rows] = torch.nn.functional.normalize(pooled, dim=1).cpu().numpy()
        return out
