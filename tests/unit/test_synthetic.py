"""The synthetic SMPD writer produces what the SMPD reader loads without complaint."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from smp_platform.sources import read_source
from smp_platform.testing.smpd_files import write_smpd_dataset


def test_synthetic_smpd_reads_back_clean_with_every_post_labelled(tmp_path: Path) -> None:
    folder = write_smpd_dataset(tmp_path / "smpd", 500, seed=3)
    batch = read_source("smpd", folder)

    assert batch.quarantine.empty
    assert len(batch.posts) == 500
    assert batch.posts.post_id.is_unique
    assert len(batch.authors) == 500
    assert len(batch.labels) == 500
    span = batch.posts.posted_at.max() - batch.posts.posted_at.min()
    assert pd.Timedelta(days=450) < span <= pd.Timedelta(days=487)  # ~16 months
    # Images are not written: paths stay relative, as the reader keeps missing files.
    assert not batch.posts.media_path.str.startswith("/").any()
    assert batch.posts.category.nunique() > 1


def test_synthetic_users_are_heavy_tailed_and_labels_follow_signals(tmp_path: Path) -> None:
    batch = read_source("smpd", write_smpd_dataset(tmp_path, 500, seed=0, n_users=50))
    posts_per_user = batch.posts.user_id.value_counts()
    assert posts_per_user.iloc[0] >= 5 * posts_per_user.median()
    frame = batch.posts.merge(batch.labels, on="post_id").merge(
        batch.authors[["post_id", "post_count"]], on="post_id"
    )
    assert spearmanr(frame.tags.map(len), frame.popularity).statistic > 0.1
    assert spearmanr(frame.post_count, frame.popularity).statistic > 0.1


def test_synthetic_dataset_is_reproducible_from_its_seed(tmp_path: Path) -> None:
    first = read_source("smpd", write_smpd_dataset(tmp_path / "a", 50, seed=7))
    again = read_source("smpd", write_smpd_dataset(tmp_path / "b", 50, seed=7))
    other = read_source("smpd", write_smpd_dataset(tmp_path / "c", 50, seed=8))
    assert first.posts.content_hash.tolist() == again.posts.content_hash.tolist()
    assert first.posts.content_hash.tolist() != other.posts.content_hash.tolist()
