"""CLIP image embeddings (open_clip) and the CLIP text tower for image-title similarity.

Weights come from ``encoders.clip_weights``: a local open_clip checkpoint file (architecture
``encoders.clip_model``, default ViT-B-32), ``local-dir:<dir>`` (open_clip_config.json + weights),
or a pretrained tag that is already in the local cache. No weights configured -> the group is off
(:class:`EncoderUnavailable`); a random model is never used outside tests.

Images are decoded and preprocessed on a thread pool while the model runs on the previous batch.
A missing or undecodable file yields ``None`` and a reason, never an exception.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from smp_platform.features.encoders import (
    EncoderUnavailable,
    ResolvedWeights,
    configure_threads,
    cpu_count,
    encoder_id,
    resolve_weights,
    select_device,
    setting_hint,
)

if TYPE_CHECKING:
    import torch

    from smp_platform.config import EncoderSettings

SETTING = "encoders.clip_weights"
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".flv"}


class ImageEncoder:
    """open_clip model + preprocess + tokenizer; unit-norm float32 embeddings."""

    def __init__(
        self,
        model: Any,
        preprocess: Callable[[Any], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
        *,
        encoder_id: str,
        device: torch.device | str = "cpu",
        batch_size: int = 32,
        decode_workers: int | None = None,
    ) -> None:
        """Wrap an already-built open_clip model (also how test fixtures build one)."""
        import torch

        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.encoder_id = encoder_id
        self.batch_size = max(1, int(batch_size))
        self.decode_workers = decode_workers or min(4, max(1, cpu_count()))
        self.dim = int(_output_dim(model))

    @staticmethod
    def _weights(settings: EncoderSettings) -> ResolvedWeights:
        if settings.clip_weights is None:
            raise EncoderUnavailable(
                "CLIP features are off: no CLIP weights configured (none can be downloaded here); "
                f"set {setting_hint(SETTING)} to a local open_clip checkpoint file for "
                f"{settings.clip_model} or to local-dir:<dir with open_clip_config.json>"
            )
        return resolve_weights(settings.clip_weights, setting=SETTING)

    @classmethod
    def identity(cls, settings: EncoderSettings) -> str:
        """The encoder_id the configured weights give, without loading them."""
        weights = cls._weights(settings)
        arch = weights.name if weights.kind == "dir" else settings.clip_model
        return encoder_id(f"clip:{arch}", weights)

    @classmethod
    def from_settings(cls, settings: EncoderSettings) -> ImageEncoder:
        """Load ``clip_model`` with ``clip_weights``; EncoderUnavailable when none are usable."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        weights = cls._weights(settings)
        configure_threads(settings)
        device = select_device(settings)
        import open_clip

        if weights.kind == "dir":
            name, pretrained = f"local-dir:{weights.path}", None
            if not (Path(str(weights.path)) / "open_clip_config.json").is_file():
                raise EncoderUnavailable(
                    f"{weights.path} has no open_clip_config.json; point {setting_hint(SETTING)} "
                    "at an open_clip model directory or a checkpoint file"
                )
        else:
            name = settings.clip_model
            pretrained = str(weights.path) if weights.path is not None else weights.spec
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device=device, require_pretrained=True
            )
            tokenizer = open_clip.get_tokenizer(name)
        except Exception as exc:  # open_clip raises RuntimeError/ValueError/OSError/HF errors
            raise EncoderUnavailable(
                f"cannot load CLIP {name} with weights {settings.clip_weights!r} "
                f"({type(exc).__name__}: {exc}); fix {setting_hint(SETTING)} or "
                f"{setting_hint('encoders.clip_model')}"
            ) from exc
        return cls(
            model,
            preprocess,
            tokenizer,
            encoder_id=cls.identity(settings),
            device=device,
            batch_size=settings.batch_size,
        )

    # --- images ---------------------------------------------------------------------------

    def _load(self, path: str | os.PathLike[str] | None) -> tuple[torch.Tensor | None, str | None]:
        from PIL import Image

        if path is None or not str(path).strip():
            return None, "image not found: no media path"
        file = Path(path)
        if not file.is_file():
            return None, f"image not found: {file}"
        if file.suffix.lower() in VIDEO_SUFFIXES:
            return None, f"image unreadable: {file} is a video; supply a frame or thumbnail"
        try:
            with Image.open(file) as image:
                image.load()  # decode now: truncated files fail here, not in the model loop
                return self.preprocess(image.convert("RGB")), None
        except Exception as exc:  # PIL raises many types for bad data
            return None, f"image unreadable: {file} ({type(exc).__name__}: {exc})"

    def encode_images(
        self, paths: Sequence[str | os.PathLike[str] | None]
    ) -> tuple[list[np.ndarray | None], list[str | None]]:
        """Embeddings (dim,) float32 or None, and per-path failure reasons (None when fine)."""
        embeddings: list[np.ndarray | None] = [None] * len(paths)
        reasons: list[str | None] = [None] * len(paths)
        with ThreadPoolExecutor(self.decode_workers, thread_name_prefix="decode") as pool:
            for start, futures in self._prefetched_batches(pool, paths):
                tensors, rows = [], []
                for offset, future in enumerate(futures):
                    tensor, reason = future.result()
                    if tensor is None:
                        reasons[start + offset] = reason
                    else:
                        tensors.append(tensor)
                        rows.append(start + offset)
                if tensors:
                    vectors = self._embed_images(tensors)
                    for row, vector in zip(rows, vectors, strict=True):
                        embeddings[row] = vector
        return embeddings, reasons

    def _prefetched_batches(
        self, pool: ThreadPoolExecutor, paths: Sequence[Any]
    ) -> Iterator[tuple[int, list[Future[tuple[Any, str | None]]]]]:
        """Batches of decode futures; the next batch is submitted before this one is used."""
        starts = range(0, len(paths), self.batch_size)

        def submit(start: int) -> list[Future[tuple[Any, str | None]]]:
            return [pool.submit(self._load, p) for p in paths[start : start + self.batch_size]]

        pending = submit(starts[0]) if starts else []
        for index, start in enumerate(starts):
            current = pending
            if index + 1 < len(starts):
                pending = submit(starts[index + 1])
            yield start, current

    def _embed_images(self, tensors: list[torch.Tensor]) -> np.ndarray:
        import torch

        batch = torch.stack(tensors).to(self.device)
        with torch.inference_mode():
            features = self.model.encode_image(batch, normalize=True)
        return features.float().cpu().numpy().astype(np.float32)

    # --- texts ----------------------------------------------------------------------------

    def encode_texts(self, texts: Sequence[str | None]) -> np.ndarray:
        """CLIP text-tower embeddings, (n, dim) float32 unit norm; None is embedded as ""."""
        import torch

        clean = [text if isinstance(text, str) else "" for text in texts]
        out = np.zeros((len(clean), self.dim), dtype=np.float32)
        for start in range(0, len(clean), self.batch_size):
            tokens = self.tokenizer(clean[start : start + self.batch_size]).to(self.device)
            with torch.inference_mode():
                features = self.model.encode_text(tokens, normalize=True)
            out[start : start + len(tokens)] = features.float().cpu().numpy()
        return out


def _output_dim(model: Any) -> int:
    visual = getattr(model, "visual", None)
    dim = getattr(visual, "output_dim", None)
    if dim is None:
        projection = getattr(model, "text_projection", None)
        dim = projection.shape[-1] if projection is not None else None
    if dim is None:
        raise ValueError("cannot tell the embedding size of this open_clip model")
    return int(dim)
