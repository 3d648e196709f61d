"""Scale-out: a refresh on a 2-worker Dask LocalCluster gives exactly the in-process features."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from flows.refresh import run_refresh
from smp_platform.core.config import EncoderSettings, Settings
from smp_platform.pipeline.ingest import ingest
from tests.helpers import write_subset

pytestmark = pytest.mark.integration

VIEWS = ("post_author", "post_temporal", "post_content", "post_text_semantics")


def _features(settings: Settings, view: str) -> pd.DataFrame:
    glob = settings.offline_dir / view / "*.parquet"
    frame = duckdb.sql(f"SELECT * EXCLUDE (created_at) FROM read_parquet('{glob}')").df()
    return frame.sort_values("post_id").reset_index(drop=True)


def test_dask_refresh_matches_the_in_process_refresh(tmp_path: Path, prefect_server: None) -> None:
    data = write_subset("train", tmp_path / "train", n=120)
    results = {}
    for runner in ("local", "dask"):
        settings = Settings(
            data_dir=tmp_path / runner,
            # several partitions, so both workers get some
            refresh_batch_size=30,
            model_batch_size=30,
            dask_workers=2,
            encoders=EncoderSettings(perplexity_model=None),
        )
        settings.ensure_dirs()
        ingest(settings, "smp-video", data)
        summary = run_refresh(settings, use_dask=runner == "dask")
        assert summary.written["post_temporal"] == 120
        results[runner] = {view: _features(settings, view) for view in VIEWS}
    for view in VIEWS:
        local, dask = results["local"][view], results["dask"][view]
        assert len(local) == 120
        if view == "post_text_semantics":
            embeddings_local = pd.DataFrame(local.pop("text_embedding").tolist())
            embeddings_dask = pd.DataFrame(dask.pop("text_embedding").tolist())
            pd.testing.assert_frame_equal(embeddings_local, embeddings_dask, atol=1e-6, rtol=0)
        pd.testing.assert_frame_equal(local, dask, check_exact=False, atol=1e-9)
