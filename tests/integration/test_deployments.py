"""The nightly schedule, created against a real local Prefect API and read back."""

from __future__ import annotations

import pytest

from smp_platform.core.config import Settings

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
    # Only the nightly deployment's refresh runs fire it: `smp refresh` by hand runs the same
    # flow without a deployment and must not start training (it did, in the compose stack).
    from prefect.server.events.schemas.automations import EventTrigger
    from prefect.server.events.schemas.events import RelatedResource, Resource

    server_trigger = EventTrigger.model_validate(trigger.model_dump())
    flow_run = Resource({"prefect.resource.id": "prefect.flow-run.1"})
    flow = RelatedResource(
        {
            "prefect.resource.id": "prefect.flow.1",
            "prefect.resource.role": "flow",
            "prefect.resource.name": "refresh",
        }
    )
    deployment = RelatedResource(
        {
            "prefect.resource.id": f"prefect.deployment.{refresh.id}",
            "prefect.resource.role": "deployment",
            "prefect.resource.name": REFRESH_DEPLOYMENT,
        }
    )
    assert server_trigger.covers_resources(flow_run, [flow, deployment])
    assert not server_trigger.covers_resources(flow_run, [flow])
    # Deploying again updates in place: still one deployment of each, one automation.
    deploy_all(settings, work_pool="smp-test-pool")
    with get_client(sync_client=True) as client:
        assert len(client.read_automations_by_name("after-nightly-refresh")) == 1
