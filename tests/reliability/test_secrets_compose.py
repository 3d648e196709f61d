"""Secrets stay secret, on the compose profile against this machine's PostgreSQL and Redis with
a password-bearing DSN (a role with a password, created for the test): after ingest, refresh,
train and promote, the password is in none of Prefect's stored flow-run parameters (read back
from the Prefect API), in no task run, and in no file under the data dir; the rendered
``feature_store.yaml`` references the environment variable, and Feast expands it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smp_platform.core.config import Settings
from tests.helpers import compose_profile, write_subset

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


@dataclass
class SecretPlatform:
    settings: Settings
    password: str
    dsn: str


@pytest.fixture
def secret_platform(tmp_path: Path) -> Iterator[SecretPlatform]:
    password = f"pw-{uuid.uuid4().hex}"
    with compose_profile(tmp_path / "data", password=password) as (settings, dsn):
        yield SecretPlatform(settings, password, dsn)


def test_no_password_in_prefect_runs_or_under_the_data_dir(
    secret_platform: SecretPlatform, tmp_path: Path, prefect_server: None, monkeypatch
) -> None:
    from feast.repo_config import load_repo_config
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    from flows.promote import run_promote
    from flows.refresh import run_refresh
    from flows.train import run_train
    from smp_platform.pipeline.ingest import ingest

    settings, password = secret_platform.settings, secret_platform.password
    assert password not in repr(settings) and password not in str(settings.compose)
    started = datetime.now(UTC)
    ingest(settings, "smp-video", write_subset("train", tmp_path / "train", n=100))
    summary = run_refresh(settings)
    assert summary.written["post_temporal"] == 100
    outcome = run_train(settings)
    assert "first champion" in str(run_promote(settings, outcome.version))

    with get_client(sync_client=True) as client:
        flow_runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=started))
        )
        task_runs = [
            client.read_task_runs(
                flow_run_filter=FlowRunFilter(id={"any_": [run.id for run in flow_runs]})
            )
        ]
    ours = [
        run
        for run in flow_runs
        if run.state is not None and run.state.is_completed() and run.parameters
    ]
    assert len(ours) >= 3  # refresh, train, promote
    for run in flow_runs:  # every stored run, scheduled ones of other tests included
        stored = json.dumps(run.parameters, default=str)
        assert password not in stored, run.parameters
        assert "settings" not in run.parameters
    for run in ours:
        assert run.parameters["data_dir"] == str(settings.root)
    for runs in task_runs:
        for task_run in runs:
            assert password not in task_run.model_dump_json()

    leaks = [
        path
        for path in settings.root.rglob("*")
        if path.is_file() and password.encode() in path.read_bytes()
    ]
    assert leaks == []

    rendered = settings.feast_dir / "feature_store.yaml"
    assert "${SMP_COMPOSE__POSTGRES_DSN}" in rendered.read_text()
    monkeypatch.setenv("SMP_COMPOSE__POSTGRES_DSN", secret_platform.dsn)
    config = load_repo_config(settings.feast_dir, rendered)
    assert config.registry.path == secret_platform.dsn  # Feast expands ${VAR} when it reads
