"""The tensor decode/preprocess path against open_clip's PIL preprocess, on real JPEGs.

The CUDA path (bytes read in threads, one batched decode, resize on the device) runs here with
``device="cpu"`` and libjpeg: the same code after the decoder.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from smp_platform.core.config import EncoderSettings  # noqa: E402
from smp_platform.features.image_decode import (  # noqa: E402
    TensorPreprocess,
    decode_jpeg_cpu,
    decode_jpegs_on,
    looks_like_complete_jpeg,
)
from smp_platform.features.image_embedding import ImageEncoder  # noqa: E402


def real_jpegs() -> list[Path]:
    """Photographs that ship with installed packages (no network here)."""
    import matplotlib
    import sklearn.datasets

    found = [
        Path(sklearn.datasets.__file__).parent / "images" / "china.jpg",
        Path(sklearn.datasets.__file__).parent / "images" / "flower.jpg",
        Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
    ]
    found = [p for p in found if p.is_file()]
    if len(found) < 2:
        pytest.skip("no real JPEGs installed")
    return found


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Real photos, plus grey and 4:4:4 variants and a crop smaller than the model's input."""
    out = tmp_path_factory.mktemp("photos")
    paths = list(real_jpegs())
    with Image.open(paths[0]) as image:
        image.convert("L").save(out / "grey.jpg", quality=85)
        image.save(out / "q95-444.jpg", quality=95, subsampling=0)
        image.crop((10, 20, 150, 120)).save(out / "small.jpg", quality=90)
    return [*paths, out / "grey.jpg", out / "q95-444.jpg", out / "small.jpg"]


@pytest.mark.parametrize("size", [224, 32])
def test_tensor_preprocess_matches_open_clip_pil(photos: list[Path], size: int) -> None:
    transform = open_clip.image_transform(size, is_train=False)
    tensor_preprocess = TensorPreprocess.from_transform(transform)
    assert tensor_preprocess is not None
    one_level = 1 / 255 / min(tensor_preprocess.std)  # one uint8 step after Normalize
    for path in photos:
        with Image.open(path) as image:
            reference = transform(image.convert("RGB"))
        pixels = decode_jpeg_cpu(path.read_bytes())
        assert pixels is not None and pixels.dtype == torch.uint8 and pixels.shape[0] == 3
        ours = tensor_preprocess(pixels[None])[0]
        assert ours.shape == reference.shape
        diff = (ours - reference).abs()
        # the same JPEG decoder, the same kernel; only rounding ties differ, by one level
        assert diff.max().item() <= one_level * 1.01, path.name
        assert diff.mean().item() < one_level * 0.01, path.name


def test_unknown_transforms_keep_pil() -> None:
    from torchvision import transforms as T

    assert TensorPreprocess.from_transform(T.Compose([T.Resize((224, 224)), T.ToTensor()])) is None
    squash = open_clip.image_transform(224, is_train=False, resize_mode="squash")
    assert TensorPreprocess.from_transform(squash) is None
    assert TensorPreprocess.from_transform(lambda image: image) is None


def test_jpeg_framing_and_cmyk_go_to_pil(photos: list[Path]) -> None:
    data = photos[0].read_bytes()
    assert looks_like_complete_jpeg(data) and looks_like_complete_jpeg(data + b"\x00\x00")
    assert not looks_like_complete_jpeg(data[: len(data) // 2])  # truncated
    assert not looks_like_complete_jpeg(b"\x89PNG\r\n\x1a\n" + data[8:])
    with Image.open(photos[0]) as image:
        buffer = io.BytesIO()
        image.convert("CMYK").save(buffer, format="JPEG")
    assert decode_jpeg_cpu(buffer.getvalue()) is None  # PIL's CMYK conversion is the reference
    decoded = decode_jpegs_on(torch.device("cpu"), [data, b"\xff\xd8\xff garbage \xff\xd9"])
    assert decoded[0] is not None and decoded[1] is None


def _vit(seed: int = 0) -> tuple[object, object, object]:
    """ViT-B-32's real architecture with random weights: embeddings show preprocessing error."""
    torch.manual_seed(seed)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    return model.eval(), preprocess, open_clip.get_tokenizer("ViT-B-32")


@pytest.fixture(scope="module")
def vit_b32() -> tuple[object, object, object]:
    return _vit()


def _encoder(vit: tuple[object, object, object], **kwargs: object) -> ImageEncoder:
    model, preprocess, tokenizer = vit
    return ImageEncoder(
        model,
        preprocess,
        tokenizer,
        encoder_id="clip:ViT-B-32-random@test",
        batch_size=4,
        decode_workers=2,
        **kwargs,  # type: ignore[arg-type]
    )


def test_embeddings_agree_with_the_pil_path(
    vit_b32: tuple[object, object, object], photos: list[Path]
) -> None:
    pil = _encoder(vit_b32, image_decode="pil")
    tensor = _encoder(vit_b32)
    batched = _encoder(vit_b32)
    batched.decode_on_device = True  # the CUDA path's batched decode + resize, on the CPU
    assert pil.tensor_preprocess is None and tensor.tensor_preprocess is not None
    reference, reasons = pil.encode_images(photos)
    assert reasons == [None] * len(photos)
    reference_rows = np.stack(reference)
    for encoder in (tensor, batched):
        embeddings, reasons = encoder.encode_images(photos)
        assert reasons == [None] * len(photos)
        cosine = (np.stack(embeddings) * reference_rows).sum(axis=1)
        assert (cosine > 0.999).all(), cosine
    # the check can fail: different photos are far apart under the same random model
    assert float(reference_rows[0] @ reference_rows[2]) < 0.999


def test_bad_files_become_reasons_on_both_paths(
    vit_b32: tuple[object, object, object], photos: list[Path], tmp_path: Path
) -> None:
    framed_garbage = tmp_path / "framed.jpg"  # SOI ... EOI around junk: libjpeg refuses, PIL too
    framed_garbage.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg at all \xff\xd9")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(photos[0].read_bytes()[:5000])
    missing = tmp_path / "missing.jpg"
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    png = tmp_path / "photo.png"
    with Image.open(photos[1]) as image:
        image.save(png)
    paths = [photos[0], framed_garbage, truncated, missing, None, video, png]
    expected = _encoder(vit_b32, image_decode="pil").encode_images(paths)
    for on_device in (False, True):
        encoder = _encoder(vit_b32)
        encoder.decode_on_device = on_device
        embeddings, reasons = encoder.encode_images(paths)
        assert reasons == expected[1]  # same words as PIL's verdict
        assert [e is None for e in embeddings] == [False, True, True, True, True, True, False]
        assert reasons[1].startswith(f"image unreadable: {framed_garbage}")
        assert reasons[2].startswith(f"image unreadable: {truncated}")
        np.testing.assert_allclose(embeddings[6], expected[0][6], atol=1e-6)  # PNG: PIL path


def test_device_aware_defaults() -> None:
    settings = EncoderSettings()
    assert settings.token_budget_for("cpu") == 2048
    assert settings.token_budget_for("cuda") == 32768
    assert settings.text_batch_for("cpu") == settings.batch_size == 32
    assert settings.text_batch_for("cuda") == settings.image_batch_for("cuda") == 256
    pinned = EncoderSettings(perplexity_token_budget=4096, text_batch_size=64, image_batch_size=8)
    assert pinned.token_budget_for("cuda") == 4096 and pinned.text_batch_for("cuda") == 64
    assert pinned.image_batch_for("cpu") == 8


def test_precision_is_float32_on_cpu_unless_asked() -> None:
    from smp_platform.features.encoders import autocast_dtype

    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "auto") is None
    assert autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "bf16") == torch.bfloat16
