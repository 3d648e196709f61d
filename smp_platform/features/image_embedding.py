"""CLIP image embeddings (open_clip) and the CLIP text tower for image-title similarity.

Weights come from ``encoders.clip_weights``: a local open_clip checkpoint file (architecture
``encoders.clip_model``, default ViT-B-32), ``local-dir:<dir>`` (open_clip_config.json + weights),
or a pretrained tag that is already in the local cache. No weights configured -> the group is off
(:class:`EncoderUnavailable`); a random model is never used outside tests.

Images are decoded and preprocessed on a thread pool while the model runs on the previous batch:
JPEGs as tensor ops off the GIL (libjpeg-turbo on CPU; on CUDA the threads only read bytes and
nvJPEG decodes the batch on the GPU), everything else with PIL (see
:mod:`smp_platform.features.image_decode`). On CUDA the towers run under bf16 autocast with TF32
matmuls (``encoders.precision``). A missing or undecodable file yields ``None`` and a reason,
never an exception: PIL, as before, is the judge of every file the tensor path does not take.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from smp_platform.features.encoders import (
    EncoderUnavailable,
    Precision,
    ResolvedWeights,
    autocast,
    autocast_dtype,
    configure_accelerator,
    configure_threads,
    cpu_count,
    encoder_id,
    resolve_weights,
    select_device,
    setting_hint,
)
from smp_platform.features.image_decode import (
    TensorPreprocess,
    decode_jpeg_cpu,
    decode_jpegs_on,
    looks_like_complete_jpeg,
    read_bytes,
)

if TYPE_CHECKING:
    import torch

    from smp_platform.core.config import EncoderSettings

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
        precision: Precision = "auto",
        image_decode: Literal["auto", "pil"] = "auto",
    ) -> None:
        """Wrap an already-built open_clip model (also how test fixtures build one)."""
        import torch

        self.device = torch.device(device)
        configure_accelerator(self.device, precision)
        self.model = model.to(self.device).eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.encoder_id = encoder_id
        self.batch_size = max(1, int(batch_size))
        self.decode_workers = decode_workers or min(
            16 if self.device.type == "cuda" else 4, max(1, cpu_count())
        )
        self.dim = int(_output_dim(model))
        self.autocast_dtype = autocast_dtype(self.device, precision)
        # The tensor path replaces open_clip's PIL preprocess only where it recognises it exactly
        self.tensor_preprocess = (
            TensorPreprocess.from_transform(preprocess) if image_decode == "auto" else None
        )
        # CUDA: threads only read bytes, nvJPEG decodes each batch in one call. Tests set it on
        # CPU to run the same batched path with libjpeg.
        self.decode_on_device = self.device.type == "cuda"

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
            batch_size=settings.image_batch_for(device.type),
            precision=settings.precision,
            image_decode=settings.image_decode,
        )

    # --- images ---------------------------------------------------------------------------

    def _load(self, path: str | os.PathLike[str] | None) -> tuple[torch.Tensor | None, str | None]:
        """PIL decode + open_clip's preprocess: the fallback, and the judge of bad files."""
        from PIL import Image

        missing = _not_an_image(path)
        if missing is not None:
            return None, missing
        file = Path(str(path))
        try:
            with Image.open(file) as image:
                image.load()  # decode now: truncated files fail here, not in the model loop
                return self.preprocess(image.convert("RGB")), None
        except Exception as exc:  # PIL raises many types for bad data
            return None, f"image unreadable: {file} ({type(exc).__name__}: {exc})"

    def _prepare(self, path: str | os.PathLike[str] | None) -> _Prepared:
        """Run in a decode thread: a preprocessed tensor, JPEG bytes for the GPU, or a reason.

        Only files that look like complete JPEGs take the tensor path; anything else, and any
        JPEG libjpeg refuses, goes through :meth:`_load`, so bad files get PIL's verdict.
        """
        if self.tensor_preprocess is None or _not_an_image(path) is not None:
            return _Prepared(*self._load(path))
        data = read_bytes(str(path))
        if data is None or not looks_like_complete_jpeg(data):
            return _Prepared(*self._load(path))
        if self.decode_on_device:
            return _Prepared(None, None, data)  # decoded on the GPU, a batch at a time
        try:
            pixels = decode_jpeg_cpu(data)  # libjpeg-turbo and the resize release the GIL
        except Exception:  # libjpeg raises RuntimeError for bad data: PIL decides
            pixels = None
        if pixels is None:
            return _Prepared(*self._load(path))
        return _Prepared(self.tensor_preprocess(pixels[None])[0], None)

    def encode_images(
        self, paths: Sequence[str | os.PathLike[str] | None]
    ) -> tuple[list[np.ndarray | None], list[str | None]]:
        """Embeddings (dim,) float32 or None, and per-path failure reasons (None when fine)."""
        embeddings: list[np.ndarray | None] = [None] * len(paths)
        reasons: list[str | None] = [None] * len(paths)
        with ThreadPoolExecutor(self.decode_workers, thread_name_prefix="decode") as pool:
            for start, futures in self._prefetched_batches(pool, paths):
                prepared = [future.result() for future in futures]
                tensors, rows = self._finish_batch(paths[start : start + len(prepared)], prepared)
                for offset, item in enumerate(prepared):
                    reasons[start + offset] = item.reason
                if rows:
                    vectors = self._embed_images(tensors)
                    for row, vector in zip(rows, vectors, strict=True):
                        embeddings[start + row] = vector
        return embeddings, reasons

    def _finish_batch(
        self, paths: Sequence[str | os.PathLike[str] | None], prepared: list[_Prepared]
    ) -> tuple[list[torch.Tensor], list[int]]:
        """Decode the batch's JPEG bytes on the device; (tensors, their rows in the batch)."""
        pending = [row for row, item in enumerate(prepared) if item.jpeg is not None]
        if pending:
            assert self.tensor_preprocess is not None
            decoded = decode_jpegs_on(self.device, [prepared[row].jpeg for row in pending])  # type: ignore[misc]
            good = [
                (row, pixels)
                for row, pixels in zip(pending, decoded, strict=True)
                if pixels is not None
            ]
            if good:
                batch = self.tensor_preprocess.batch([pixels for _, pixels in good])
                for (row, _), tensor in zip(good, batch, strict=True):
                    prepared[row] = _Prepared(tensor, None)
            for row, pixels in zip(pending, decoded, strict=True):
                if pixels is None:  # nvJPEG refused it: PIL decodes it or says why
                    prepared[row] = _Prepared(*self._load(paths[row]))
        rows = [row for row, item in enumerate(prepared) if item.tensor is not None]
        return [prepared[row].tensor for row in rows], rows  # type: ignore[misc]

    def _prefetched_batches(
        self, pool: ThreadPoolExecutor, paths: Sequence[Any]
    ) -> Iterator[tuple[int, list[Future[_Prepared]]]]:
        """Batches of decode futures; the next batch is submitted before this one is used."""
        starts = range(0, len(paths), self.batch_size)

        def submit(start: int) -> list[Future[_Prepared]]:
            return [pool.submit(self._prepare, p) for p in paths[start : start + self.batch_size]]

        pending = submit(starts[0]) if starts else []
        for index, start in enumerate(starts):
            current = pending
            if index + 1 < len(starts):
                pending = submit(starts[index + 1])
            yield start, current

    def _embed_images(self, tensors: list[torch.Tensor]) -> np.ndarray:
        import torch

        batch = torch.stack([t.to(self.device, non_blocking=True) for t in tensors])
        with torch.inference_mode(), autocast(self.device, self.autocast_dtype):
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
            with torch.inference_mode(), autocast(self.device, self.autocast_dtype):
                features = self.model.encode_text(tokens, normalize=True)
            out[start : start + len(tokens)] = features.float().cpu().numpy()
        return out


class _Prepared(NamedTuple):
    """One file after its decode thread: a tensor, or JPEG bytes still to decode, or a reason."""

    tensor: torch.Tensor | None
    reason: str | None
    jpeg: bytes | None = None


def _not_an_image(path: str | os.PathLike[str] | None) -> str | None:
    """The quarantine reason for a path that cannot be an image file, else None."""
    if path is None or not str(path).strip():
        return "image not found: no media path"
    file = Path(path)
    if not file.is_file():
        return f"image not found: {file}"
    if file.suffix.lower() in VIDEO_SUFFIXES:
        return f"image unreadable: {file} is a video; supply a frame or thumbnail"
    return None


def _output_dim(model: Any) -> int:
    visual = getattr(model, "visual", None)
    dim = getattr(visual, "output_dim", None)
    if dim is None:
        projection = getattr(model, "text_projection", None)
        dim = projection.shape[-1] if projection is not None else None
    if dim is None:
        raise ValueError("cannot tell the embedding size of this open_clip model")
    return int(dim)
