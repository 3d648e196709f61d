"""A refresh killed (SIGKILL, in a real ``smp refresh`` process) at each boundary of its work,
then run again: every post is online, and every view's online row equals the offline store's
latest row. A refresh with a failed batch exits 1, its flow run is Failed (the nightly model
job, triggered on Completed, does not start), and the next run computes the failed posts.

The kills come from the test hook ``SMP_FAULT_POINT`` (smp_platform/core/faults.py): the process
SIGKILLs itself at the named point, so nothing of the run's own cleanup can run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from smp_platform.core.config import EncoderSettings, Settings
from smp_platform.features.schema import CREATED_AT, EVENT_TIMESTAMP, POST_ID
from smp_platform.testing.feature_frames import builtin_groups
from tests.helpers import write_subset

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

REPO = Path(__file__).resolve().parents[2]
GROUPS = builtin_groups()
TABULAR_VIEWS = tuple(v.name for v in GROUPS.group("tabular").views)
VIEW_FIELDS = {v.name: v.stored_fields for v in GROUPS.views}
POSTS = 100


def tabular_settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        refresh_batch_size=40,  # three batches of three views each
        encoders=EncoderSettings(text_model=None, perplexity_model=None),
    )


def smp_env(fault: str | None = None) -> dict[str, str]:
    """The CLI's environment: tabular-only settings, the session's Prefect test server."""
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ)
    env.update(
        SMP_ENCODERS__TEXT_MODEL="",
        SMP_ENCODERS__PERPLEXITY_MODEL="",
        SMP_REFRESH_BATCH_SIZE="40",
    )
    env.pop("SMP_FAULT_POINT", None)
    if fault:
        env["SMP_FAULT_POINT"] = fault
    api_url = PREFECT_API_URL.value()
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def smp(data_dir: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smp_platform.cli", "--data-dir", str(data_dir), *args],
        cwd=REPO,
        env=smp_env(fault),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_subset("train", tmp_path_factory.mktemp("posts") / "train", n=POSTS)


@pytest.fixture
def data_dir(tmp_path: Path, dataset: Path) -> Path:
    from smp_platform.pipeline.ingest import ingest

    root = tmp_path / "data"
    ingest(tabular_settings(root), "smp-video", dataset)
    return root


def offline_latest(settings: Settings, view: str) -> pd.DataFrame:
    """The offline store's latest row per post of a view (what the online store must hold)."""
    names = [f.name for f in VIEW_FIELDS[view]]
    query = f"""
        SELECT {POST_ID}, {", ".join(names)} FROM read_parquet($glob)
        QUALIFY row_number() OVER (
            PARTITION BY {POST_ID} ORDER BY {EVENT_TIMESTAMP} DESC, {CREATED_AT} DESC) = 1
    """
    glob = str(settings.offline_dir / view / "*.parquet")
    with duckdb.connect() as con:
        return con.execute(query, {"glob": glob}).df()


def online_rows(settings: Settings, view: str, post_ids: list[str]) -> pd.DataFrame:
    from smp_platform.infra.feast_store import FeatureStoreGateway

    names = [f.name for f in VIEW_FIELDS[view]]
    store = FeatureStoreGateway(settings).store
    response = store.get_online_features(
        features=[f"{view}:{name}" for name in names],
        entity_rows=[{POST_ID: post_id} for post_id in post_ids],
    )
    return pd.DataFrame(response.to_dict())


def assert_every_post_online_as_offline(settings: Settings) -> None:
    from smp_platform.infra.warehouse import Warehouse

    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        post_ids = sorted(warehouse.posts_frame()[POST_ID])
    assert len(post_ids) == POSTS
    for view in TABULAR_VIEWS:
        offline = offline_latest(settings, view).set_index(POST_ID).sort_index()
        assert sorted(offline.index) == post_ids, f"{view}: posts missing offline"
        online = online_rows(settings, view, post_ids).set_index(POST_ID).sort_index()
        assert online["input_hash"].notna().all(), f"{view}: posts missing online"
        for column in offline.columns:
            want, got = offline[column], online[column]
            if pd.api.types.is_numeric_dtype(want) and want.dtype != bool:
                np.testing.assert_allclose(
                    got.astype(float).to_numpy(),
                    want.astype(float).to_numpy(),
                    rtol=1e-6,
                    equal_nan=True,
                    err_msg=f"{view}.{column}",
                )
            else:
                assert (
                    got.where(got.notna(), None).tolist() == want.where(want.notna(), None).tolist()
                ), f"{view}.{column}"


def view_post_counts(settings: Settings) -> dict[str, int]:
    counts = {}
    for view in TABULAR_VIEWS:
        glob = str(settings.offline_dir / view / "*.parquet")
        with duckdb.connect() as con:
            counts[view] = con.execute(
                "SELECT count(DISTINCT post_id) FROM read_parquet($glob)", {"glob": glob}
            ).fetchall()[0][0]
    return counts


def killed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr[-3000:])


def rerun_repairs(data_dir: Path) -> None:
    """The next refresh (the flow, in this process: the kill was the subprocess's) repairs all."""
    from flows.refresh import run_refresh
    from smp_platform.pipeline.refresh import check_for_work

    settings = tabular_settings(data_dir)
    run_refresh(settings)
    assert_every_post_online_as_offline(settings)
    assert not check_for_work(settings).has_work  # and nothing is left for a third run


def test_killed_between_the_views_of_a_batch(data_dir: Path, prefect_server: None) -> None:
    killed(smp(data_dir, "refresh", fault="between-views"))
    counts = view_post_counts(tabular_settings(data_dir))
    # The first batch's first view was written, its other views were not: a half post.
    assert counts[TABULAR_VIEWS[0]] == 40 and counts[TABULAR_VIEWS[1]] == 0, counts
    rerun_repairs(data_dir)


def test_killed_after_the_parquet_before_materialize(data_dir: Path, prefect_server: None) -> None:
    killed(smp(data_dir, "refresh", fault="before-materialize"))
    settings = tabular_settings(data_dir)
    assert view_post_counts(settings) == dict.fromkeys(TABULAR_VIEWS, POSTS)
    from smp_platform.pipeline.refresh import check_for_work

    check = check_for_work(settings)
    # Nothing to compute, everything to put online: a run that judged staleness alone
    # (as before) would never materialize these rows.
    assert sum(check.stale.values()) == 0 and check.pending_parts > 0
    again = smp(data_dir, "refresh")  # through the CLI once: it materializes, no stale rows
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 feature rows written" in again.stdout, again.stdout
    assert_every_post_online_as_offline(settings)
    third = smp(data_dir, "refresh")
    assert third.returncode == 0 and "nothing to do" in third.stdout, third.stdout


def test_killed_during_materialize(data_dir: Path, prefect_server: None) -> None:
    killed(smp(data_dir, "refresh", fault="during-materialize"))
    settings = tabular_settings(data_dir)
    from smp_platform.pipeline.refresh import pending_parts

    pending = pending_parts(settings)
    assert 0 < len(pending) < len(TABULAR_VIEWS)  # one view materialized and recorded
    rerun_repairs(data_dir)


def test_a_failed_batch_exits_1_fails_the_flow_run_and_is_retried(
    data_dir: Path, prefect_server: None
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    failed = smp(data_dir, "refresh", fault="batch-error:tabular")
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert "refresh failed: 3 batch(es) failed" in failed.stderr
    assert "Traceback" not in failed.stderr.split("error: refresh failed")[-1]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["refresh"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
    # Failed, never Completed: the train-and-promote trigger (expects Completed) cannot fire.
    assert runs[0].state is not None and runs[0].state.is_failed()
    assert "retried by the next refresh" in (runs[0].state.message or "")
    assert not (data_dir / "mlflow.db").exists()  # nothing was trained
    rerun_repairs(data_dir)
