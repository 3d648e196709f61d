"""Pure signal functions on hand-made rows, input hashes, and honest encoder resolution."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smp_platform.core.config import EncoderSettings
from smp_platform.features.encoders import (
    EncoderUnavailable,
    encoder_id,
    resolve_weights,
)
from smp_platform.features.signals import (
    compute_text_semantics,
    cosine_rows,
    text_tags_text,
)


def test_cosine_rows_known_answers_and_missing_rows() -> None:
    a = [
        np.array([1.0, 0.0]),
        np.array([1.0, 1.0]),
        None,
        np.array([3.0, 4.0]),
        np.array([0.0, 0.0]),
    ]
    b = [
        np.array([0.0, 2.0]),
        np.array([2.0, 2.0]),
        np.array([1.0, 0.0]),
        np.array([-3.0, -4.0]),
        np.array([1.0, 0.0]),
    ]
    got = cosine_rows(a, b)
    np.testing.assert_allclose(got[[0, 1, 3]], [0.0, 1.0, -1.0], atol=1e-12)
    assert math.isnan(got[2]) and math.isnan(got[4])  # missing row, zero vector

    matrix_a = np.array([[1.0, 0.0], [np.nan, np.nan], [0.6, 0.8]])
    matrix_b = np.array([[0.6, 0.8], [1.0, 0.0], [0.6, 0.8]])
    got = cosine_rows(matrix_a, matrix_b)
    np.testing.assert_allclose(got[[0, 2]], [0.6, 1.0])
    assert math.isnan(got[1])
    assert cosine_rows([None, None], [None, None]).shape == (2,)
    with pytest.raises(ValueError):
        cosine_rows(np.ones((2, 3)), np.ones((3, 3)))


def test_text_tags_text_joins_in_order() -> None:
    assert text_tags_text(["falconry", " falconry training ", "", None]) == (
        "falconry, falconry training"
    )
    assert text_tags_text([]) == "" and text_tags_text(None) == ""
    assert text_tags_text(np.array(["a", "b"])) == "a, b"


class FakeEncoder:
    """Deterministic 3-d 'embeddings': letters a/b/c counts, normalised."""

    encoder_id = "fake@0"
    dim = 3

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = np.array([[t.count("a"), t.count("b"), t.count("c")] for t in texts], float) + 1e-9
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _posts(**overrides: object) -> pd.DataFrame:
    row = {
        "post_id": "p1",
        "title": "aaa",
        "tags": ["aaa", "b"],
        "caption": "bbb",
        "media_path": None,
    }
    row.update(overrides)
    return pd.DataFrame([row])


def test_text_semantics_known_answers() -> None:
    posts = pd.concat(
        [
            _posts(),
            _posts(post_id="p2", tags=[], caption=None),
            _posts(post_id="p3", title="", tags=["aaa"]),
        ],
        ignore_index=True,
    )
    frame = compute_text_semantics(posts, FakeEncoder())
    assert list(frame.columns) == [
        "post_id",
        "text_embedding",
        "text_tags_similarity",
        "caption_title_similarity",
    ]
    # "aaa" vs "aaa, b": (3,1,0) . (1,0,0) / |(3,1,0)| = 3 / sqrt(10)
    assert frame.loc[0, "text_tags_similarity"] == pytest.approx(3 / math.sqrt(10), abs=1e-6)
    assert frame.loc[0, "caption_title_similarity"] == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(frame.loc[1, "text_tags_similarity"])  # no tags
    assert math.isnan(frame.loc[1, "caption_title_similarity"])  # no caption
    assert math.isnan(frame.loc[2, "text_tags_similarity"])  # empty title
    assert frame.loc[0, "text_embedding"].dtype == np.float32


def test_missing_local_weights_path_is_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(EncoderUnavailable, match="encoders.perplexity_model") as info:
        resolve_weights(str(missing), setting="encoders.perplexity_model")
    assert str(missing) in str(info.value) and "SMP_ENCODERS__PERPLEXITY_MODEL" in str(info.value)
    with pytest.raises(EncoderUnavailable, match="unknown packaged model"):
        resolve_weights("packaged:nope", setting="encoders.text_model")
    with pytest.raises(EncoderUnavailable, match="directory not found"):
        resolve_weights(f"local-dir:{missing}", setting="encoders.clip_weights")


def test_clip_without_weights_is_unavailable_and_names_the_setting() -> None:
    pytest.importorskip("open_clip")
    from smp_platform.features.image_embedding import ImageEncoder
    from smp_platform.features.text_embedding import TextEncoder

    with pytest.raises(EncoderUnavailable, match="SMP_ENCODERS__CLIP_WEIGHTS"):
        ImageEncoder.from_settings(EncoderSettings(clip_weights=None))
    # the CLIP text tower needs the same weights
    with pytest.raises(EncoderUnavailable, match="encoders.clip_weights"):
        TextEncoder.from_settings(EncoderSettings(text_model="clip", clip_weights=None))


def test_encoder_id_tracks_content_not_path(tmp_path: Path) -> None:
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(b"weights-1" * 1000)
    second.write_bytes(b"weights-1" * 1000)
    assert encoder_id("m", first) == encoder_id("m", second)
    second.write_bytes(b"weights-2" * 1000)
    assert encoder_id("m", first) != encoder_id("m", second)
    assert encoder_id("m", first).startswith("m@")
