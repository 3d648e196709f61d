"""JPEG decoding and CLIP preprocessing as tensor ops, off the GIL (CPU threads) or on the GPU.

open_clip's preprocess runs PIL in Python (decode, bicubic resize, crop, ``ToTensor``): in
threads it is GIL-bound (issue 9: 16 threads gave 427 img/s on an H100 host, against 2,150 img/s
for the ViT-B-32 forward alone). :class:`TensorPreprocess` does the same maths on tensors:

- decode with ``torchvision.io.decode_jpeg`` (libjpeg-turbo on CPU, nvJPEG on CUDA, a whole
  batch in one call there);
- resize the shorter side with antialiased bicubic (``a = -0.5``, PIL's kernel), rounded back
  to uint8 as PIL does, centre crop, scale and normalise.

Only a transform it recognises exactly (open_clip's eval ``Resize -> CenterCrop -> RGB ->
ToTensor -> Normalize``) is replaced; anything else keeps the PIL path. Only files that look like
complete JPEGs (SOI at the start, EOI at the end) take the tensor path: everything else (PNG,
truncated or corrupt files, videos) goes through PIL, so the quarantine reasons stay what they
were. Agreement with the PIL path: tests/unit/test_image_decode.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

JPEG_SOI = b"\xff\xd8\xff"
JPEG_EOI = b"\xff\xd9"


def looks_like_complete_jpeg(data: bytes) -> bool:
    """SOI first and EOI last (trailing NUL/whitespace allowed): truncated files fail this."""
    return data[:3] == JPEG_SOI and data.rstrip(b"\x00\r\n\t ")[-2:] == JPEG_EOI


def read_bytes(path: str | Path) -> bytes | None:
    """The file's bytes, or None when it cannot be read (PIL then says why)."""
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


@dataclass(frozen=True)
class TensorPreprocess:
    """open_clip's eval transform as tensor ops: shorter side -> ``resize``, centre crop."""

    resize: int
    crop: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str  # "bicubic" or "bilinear"

    @classmethod
    def from_transform(cls, transform: Any) -> TensorPreprocess | None:
        """Recognise open_clip's eval transform; None for anything else (keep PIL)."""
        try:
            from torchvision import transforms as T
        except ImportError:
            return None
        steps = list(getattr(transform, "transforms", []))
        if len(steps) != 5:
            return None
        resize, crop, to_rgb, to_tensor, normalize = steps
        if not (
            type(resize) is T.Resize
            and type(crop) is T.CenterCrop
            and isinstance(to_tensor, T.ToTensor)  # open_clip's MaybeToTensor subclasses it
            and type(normalize) is T.Normalize
            and _converts_to_rgb(to_rgb)
        ):
            return None
        size = resize.size
        if isinstance(size, (list, tuple)):
            if len(size) != 1:
                return None  # a fixed (h, w) squash, not open_clip's default
            size = size[0]
        mode = getattr(resize.interpolation, "value", str(resize.interpolation)).lower()
        if mode not in ("bicubic", "bilinear") or resize.max_size is not None:
            return None
        if resize.antialias is False:
            return None
        crop_h, crop_w = crop.size
        mean, std = tuple(float(m) for m in normalize.mean), tuple(float(s) for s in normalize.std)
        if len(mean) != 3 or len(std) != 3:
            return None
        return cls(int(size), (int(crop_h), int(crop_w)), mean, std, mode)  # type: ignore[arg-type]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (n, 3, h, w) images of one size -> normalised float32 (n, 3, crop_h, crop_w)."""
        import torch
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        mode = (
            InterpolationMode.BICUBIC
            if self.interpolation == "bicubic"
            else (InterpolationMode.BILINEAR)
        )
        # uint8 in, uint8 out: torchvision resizes in float and rounds back, like PIL does
        resized = F.resize(images, [self.resize], interpolation=mode, antialias=True)
        cropped = F.center_crop(resized, list(self.crop))
        mean = torch.tensor(self.mean, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, 3, 1, 1)
        return (cropped.float().div_(255.0) - mean).div_(std)

    def batch(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """Decoded uint8 (3, h, w) images of any sizes -> one (n, 3, crop) float batch.

        Images of the same size are resized together (one kernel per size on a GPU).
        """
        import torch

        if not images:
            raise ValueError("no images")
        out: list[torch.Tensor | None] = [None] * len(images)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            by_shape.setdefault(tuple(image.shape), []).append(index)
        for rows in by_shape.values():
            done = self(torch.stack([images[i] for i in rows]))
            for row, tensor in zip(rows, done, strict=True):
                out[row] = tensor
        return torch.stack(out)  # type: ignore[arg-type]


def _converts_to_rgb(step: Any) -> bool:
    # open_clip 3: MaybeConvertMode(mode="RGB"); older releases: a function _convert_to_rgb
    if getattr(step, "mode", None) == "RGB":
        return True
    return "rgb" in getattr(step, "__name__", "").lower()


def as_rgb(pixels: torch.Tensor) -> torch.Tensor | None:
    """Decoded (c, h, w) -> RGB: grey is repeated (as PIL's ``convert``); CMYK -> None (PIL)."""
    if pixels.shape[0] == 3:
        return pixels
    if pixels.shape[0] == 1:
        return pixels.expand(3, -1, -1)
    return None  # CMYK/YCCK: PIL's conversion differs from libjpeg's, so PIL decodes it


def decode_jpeg_cpu(data: bytes) -> torch.Tensor | None:
    """One JPEG -> uint8 (3, h, w) RGB on the CPU, None for CMYK; raises on bad data."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return as_rgb(decode_jpeg(raw, mode=ImageReadMode.UNCHANGED))


def decode_jpegs_on(device: torch.device, blobs: Sequence[bytes]) -> list[torch.Tensor | None]:
    """JPEGs -> uint8 (3, h, w) RGB tensors on ``device`` (nvJPEG, one batched call on CUDA).

    A batch that fails is retried one file at a time so one bad file costs only itself;
    None marks a file this decoder cannot read (the caller sends it to PIL).
    """
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    if device.type != "cuda":
        out: list[torch.Tensor | None] = []
        for data in blobs:
            try:
                out.append(decode_jpeg_cpu(data))
            except Exception:  # libjpeg raises RuntimeError for bad data
                out.append(None)
        return out
    raw = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in blobs]
    unchanged = ImageReadMode.UNCHANGED
    try:
        return [as_rgb(p) for p in decode_jpeg(raw, mode=unchanged, device=device)]
    except Exception:  # one bad file fails the batched call
        single: list[torch.Tensor | None] = []
        for tensor in raw:
            try:
                single.append(as_rgb(decode_jpeg(tensor, mode=unchanged, device=device)))
            except Exception:
                single.append(None)
        return single
