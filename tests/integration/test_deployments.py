"""The nightly schedule, created against a real local Prefect API and read back."""

from __future__ import annotations

import pytest

from smp_platform.config import Settings

pytestmark = pytest.mark.integration


def test_deployments_have_the_nightly_cron_and_the_after_refresh_trigger(
    prefect_server: None, tmp_path
) -> None:
    from prefect.client.orchestration import get_client

    from flows.deployments import REFRESH_DEPLOYMENT, TRAIN_DEPLOYMENT, deploy_all

    settings = Settings(data_dir=tmp_path / "data", refresh_cron="15 3 * * *")
    lines = deploy_all(settings, work_pool="smp-test-pool")
    assert len(lines) == 2 and "cron 15 3 * * * UTC" in lines[0]
    with get_client(sync_client=True) as client:
        refresh = client.read_deployment_by_name(f"refresh/{REFRESH_DEPLOYMENT}")
        train = client.read_deployment_by_name(f"train-and-promote/{TRAIN_DEPLOYMENT}")
        pool = client.read_work_pool("smp-test-pool")
        automations = client.read_automations_by_name("after-nightly-refresh")
    assert [s.schedule.cron for s in refresh.schedules] == ["15 3 * * *"]
    assert refresh.schedules[0].schedule.timezone == "UTC"
    assert refresh.work_pool_name == train.work_pool_name == pool.name == "smp-test-pool"
    assert pool.type == "process"
    # by module: a process worker runs each flow in a fresh directory (the compose stack)
    assert refresh.entrypoint == "flows.refresh.refresh_flow"
    assert train.entrypoint == "flows.promote.train_and_promote_flow"
    assert train.schedules == []  # runs on the refresh's completion, not on a clock
    assert len(automations) == 1
    trigger = automations[0].trigger
    assert "prefect.flow-run.Completed" in trigger.expect
    # Deploying again updates in place: still one deployment of each, one automation.
    deploy_all(settings, work_pool="smp-test-pool")
    with get_client(sync_client=True) as client:
        assert len(client.read_automations_by_name("after-nightly-refresh")) == 1
