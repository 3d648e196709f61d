"""ImageEncoder on a tiny, randomly initialised open_clip model (a test fixture only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from smp_platform.core.config import EncoderSettings  # noqa: E402
from smp_platform.features.encoders import EncoderUnavailable  # noqa: E402
from smp_platform.features.image_embedding import ImageEncoder  # noqa: E402

TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def _tiny_model() -> tuple[object, object, object]:
    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY_CFG).eval()
    preprocess = open_clip.image_transform(32, is_train=False)
    tokenizer = open_clip.SimpleTokenizer(context_length=16)
    return model, preprocess, tokenizer


@pytest.fixture(scope="module")
def encoder() -> ImageEncoder:
    model, preprocess, tokenizer = _tiny_model()
    return ImageEncoder(
        model, preprocess, tokenizer, encoder_id="clip:tiny@test", batch_size=3, decode_workers=2
    )


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(7)
    paths = []
    for i, size in enumerate([(40, 30), (32, 32), (64, 48), (20, 50), (33, 33)]):
        pixels = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
        path = tmp_path / f"img{i}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def test_shapes_and_unit_norm(encoder: ImageEncoder, images: list[Path]) -> None:
    embeddings, reasons = encoder.encode_images(images)
    assert reasons == [None] * len(images)
    assert all(e is not None and e.shape == (16,) and e.dtype == np.float32 for e in embeddings)
    stacked = np.stack(embeddings)
    np.testing.assert_allclose(np.linalg.norm(stacked, axis=1), 1.0, rtol=1e-5)
    texts = encoder.encode_texts(["a red square", "", None, "a dog on a beach"])
    assert texts.shape == (4, 16) and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, rtol=1e-5)


def test_missing_and_corrupt_images_give_reasons(
    encoder: ImageEncoder, images: list[Path], tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(images[1].read_bytes()[:60])
    missing = tmp_path / "nope.jpg"
    paths = [images[0], missing, corrupt, None, truncated, images[2]]
    embeddings, reasons = encoder.encode_images(paths)
    assert embeddings[0] is not None and embeddings[5] is not None
    assert embeddings[1] is None and reasons[1] == f"image not found: {missing}"
    assert embeddings[2] is None and reasons[2].startswith(f"image unreadable: {corrupt}")
    assert embeddings[3] is None and reasons[3].startswith("image not found")
    assert embeddings[4] is None and reasons[4].startswith(f"image unreadable: {truncated}")
    assert reasons[0] is None and reasons[5] is None


def test_batched_equals_one_by_one(encoder: ImageEncoder, images: list[Path]) -> None:
    batched, _ = encoder.encode_images(images)
    single = [encoder.encode_images([path])[0][0] for path in images]
    np.testing.assert_allclose(np.stack(batched), np.stack(single), atol=1e-5)
    texts = ["one", "two words", "a somewhat longer title here", "", "five"]
    one_by_one = np.concatenate([encoder.encode_texts([t]) for t in texts])
    np.testing.assert_allclose(encoder.encode_texts(texts), one_by_one, atol=1e-5)


def test_from_settings_loads_a_local_dir_and_refuses_missing_weights(tmp_path: Path) -> None:
    model, _, _ = _tiny_model()
    model_dir = tmp_path / "tiny-clip"
    model_dir.mkdir()
    (model_dir / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG}))
    torch.save(model.state_dict(), model_dir / "open_clip_pytorch_model.bin")
    settings = EncoderSettings(clip_weights=f"local-dir:{model_dir}", device="cpu", threads=1)
    loaded = ImageEncoder.from_settings(settings)
    assert loaded.dim == 16 and loaded.encoder_id.startswith("clip:tiny-clip@")
    reference = model.encode_text(
        open_clip.SimpleTokenizer(context_length=16)(["hello"]), normalize=True
    )
    np.testing.assert_allclose(
        loaded.encode_texts(["hello"]), reference.detach().numpy(), atol=1e-5
    )

    empty_dir = tmp_path / "no-weights"
    empty_dir.mkdir()
    (empty_dir / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG}))
    with pytest.raises(EncoderUnavailable, match="clip_weights"):
        ImageEncoder.from_settings(EncoderSettings(clip_weights=f"local-dir:{empty_dir}"))
