"""The refresh's bookkeeping: input hashes (content, author, media file) and encoder ids."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from smp_platform.core.config import EncoderSettings, Settings
from smp_platform.pipeline.refresh import encoder_identity, input_hashes


def _posts(**overrides: object) -> pd.DataFrame:
    row = {"post_id": "p1", "content_hash": "c1", "author_content_hash": "a1", "media_path": None}
    row.update(overrides)
    return pd.DataFrame([row])


def test_input_hash_changes_iff_inputs_change(tmp_path: Path) -> None:
    base = input_hashes(_posts())[0]
    assert input_hashes(_posts())[0] == base
    assert input_hashes(_posts(post_id="other"))[0] == base
    for change in ({"content_hash": "c2"}, {"author_content_hash": "a2"}):
        assert input_hashes(_posts(**change))[0] != base, change
    # a media path without a file hashes as before media counted (stored rows stay current)
    assert input_hashes(_posts(media_path=str(tmp_path / "missing.jpg")))[0] == base


def test_a_changed_image_at_the_same_path_changes_the_input_hash(tmp_path: Path) -> None:
    image = tmp_path / "p1.jpg"
    image.write_bytes(b"first image")
    first = input_hashes(_posts(media_path=str(image)))[0]
    assert input_hashes(_posts(media_path=str(image)))[0] == first
    image.write_bytes(b"a different, longer image")
    assert input_hashes(_posts(media_path=str(image)))[0] != first
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same size, new mtime
    assert input_hashes(_posts(media_path=str(image)))[0] != first


def test_encoder_ids_come_from_the_weights_without_loading_them(tmp_path: Path) -> None:
    weights = tmp_path / "clip.bin"
    weights.write_bytes(b"not a real checkpoint: identity never loads it")
    settings = Settings(data_dir=tmp_path, encoders=EncoderSettings(clip_weights=str(weights)))
    first = encoder_identity("image", settings)
    assert first.startswith("clip:ViT-B-32@")
    weights.write_bytes(b"other weights")
    assert encoder_identity("image", settings) != first
    assert encoder_identity("tabular", settings) == encoder_identity("tabular", settings)
