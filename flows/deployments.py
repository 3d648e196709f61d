"""Deployments of the nightly schedule: ``refresh`` on a cron, ``train-and-promote`` after it.

The model job is triggered by the refresh's completion event rather than by a second cron, so a
slow refresh never races the training that reads its output.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flows.promote import train_and_promote_flow
from flows.refresh import refresh_flow
from smp_platform.core.config import Settings

REFRESH_DEPLOYMENT = "nightly-refresh"
TRAIN_DEPLOYMENT = "train-and-promote-after-refresh"


def build_deployments(
    settings: Settings, *, cron: str | None = None, work_pool: str = "smp-pool"
) -> list[Any]:
    from prefect.deployments.runner import EntrypointType
    from prefect.events import DeploymentEventTrigger
    from prefect.schedules import Cron

    # Deployment runs build their settings from the worker's SMP_* environment.
    refresh = refresh_flow.to_deployment(
        name=REFRESH_DEPLOYMENT,
        schedule=Cron(cron or settings.refresh_cron, timezone=settings.timezone),
        description="Features for new and changed posts; validate; write; materialize.",
        tags=["smp", "nightly"],
        work_pool_name=work_pool,
        # by module (flows.refresh.refresh_flow), not by file path relative to the deploying
        # directory: a process worker runs flows in a fresh directory, from the installed package
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    train = train_and_promote_flow.to_deployment(
        name=TRAIN_DEPLOYMENT,
        triggers=[
            DeploymentEventTrigger(
                name="after-nightly-refresh",
                expect={"prefect.flow-run.Completed"},
                # Both must hold: a run of the refresh flow, and one of the nightly deployment.
                # The flow alone also matched `smp refresh` run by hand (a local flow run that
                # reports Completed to the same API), which re-fired training.
                match_related=[
                    {"prefect.resource.role": "flow", "prefect.resource.name": refresh_flow.name},
                    {
                        "prefect.resource.role": "deployment",
                        "prefect.resource.name": REFRESH_DEPLOYMENT,
                    },
                ],
            )
        ],
        description="Train a candidate from the refreshed offline store; promote if better.",
        tags=["smp", "nightly"],
        work_pool_name=work_pool,
        # by module (flows.refresh.refresh_flow), not by file path relative to the deploying
        # directory: a process worker runs flows in a fresh directory, from the installed package
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return [refresh, train]


def ensure_work_pool(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def deploy_all(
    settings: Settings, *, cron: str | None = None, work_pool: str = "smp-pool"
) -> list[str]:
    """Create (or update) the deployments against the configured Prefect API."""
    ensure_work_pool(work_pool)
    lines = []
    for deployment in build_deployments(settings, cron=cron, work_pool=work_pool):
        deployment_id = deployment.apply(work_pool_name=work_pool)
        when = (
            f"cron {cron or settings.refresh_cron} {settings.timezone}"
            if deployment.schedules
            else "after each completed refresh"
        )
        lines.append(
            f"deployment {deployment.flow_name}/{deployment.name} ({deployment_id}): {when}"
        )
    return lines
