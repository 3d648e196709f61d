"""The refresh's bookkeeping: input hashes (content, author, media file, as a group reads them)
and encoder ids."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from smp_platform.core.config import EncoderSettings, Settings
from smp_platform.features.group import Input
from smp_platform.features.inputs import input_hashes as hashes_of
from smp_platform.testing.feature_frames import builtin_groups

GROUPS = builtin_groups()
# What a group reads that is hashed: the post, its author's row and its media file.
EVERYTHING = frozenset({Input.POST, Input.AUTHOR_PROFILE, Input.MEDIA})


def input_hashes(posts: pd.DataFrame, reads: frozenset[Input] = EVERYTHING) -> pd.Series:
    return hashes_of(reads, posts)


def encoder_identity(group: str, settings: Settings) -> str:
    return GROUPS.group(group).encoder_id(settings)


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


def test_a_group_s_input_hash_covers_only_what_it_reads(tmp_path: Path) -> None:
    image = tmp_path / "p1.jpg"
    image.write_bytes(b"an image")
    post_only = frozenset({Input.POST})
    base = input_hashes(_posts(), post_only)[0]
    assert input_hashes(_posts(content_hash="c2"), post_only)[0] != base
    # the author's row and the media file are not read: they change nothing
    assert input_hashes(_posts(author_content_hash="a2"), post_only)[0] == base
    assert input_hashes(_posts(media_path=str(image)), post_only)[0] == base
    # the built-in groups: text and image read the media file, only tabular the author's row
    reads = {group.name: group.reads for group in GROUPS}
    assert Input.AUTHOR_PROFILE in reads["tabular"] and Input.MEDIA not in reads["tabular"]
    assert Input.MEDIA in reads["image"] and Input.AUTHOR_PROFILE not in reads["text"]
    changed_author = _posts(author_content_hash="a2")
    assert (
        input_hashes(changed_author, reads["text"])[0] == input_hashes(_posts(), reads["text"])[0]
    )
    no_labels = pd.DataFrame(columns=["post_id", "user_id", "posted_at", "popularity"])
    tabular = [hashes_of(reads["tabular"], p, no_labels)[0] for p in (changed_author, _posts())]
    assert tabular[0] != tabular[1]
