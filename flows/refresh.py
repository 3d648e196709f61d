"""Nightly feature refresh: new or changed posts -> validated features -> offline + online store."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.task_runners import ThreadPoolTaskRunner

from smp_platform.config import Settings
from smp_platform.refresh import (
    BatchResult,
    RefreshSummary,
    materialize_written,
    now_utc,
    plan_refresh,
    process_batch,
)


@task(name="compute-feature-batch", cache_policy=NONE, retries=1)
def compute_batch(
    group: str, post_ids: list[str], settings: Settings, created_at: datetime
) -> BatchResult:
    return process_batch(group, post_ids, settings, created_at)


@task(name="materialize", cache_policy=NONE)
def materialize(settings: Settings, results: list[BatchResult]) -> int:
    return materialize_written(settings, results)


# In process, batches run one at a time: each model batch already uses every core through
# torch, and concurrent batches would only fight over them. Scale-out is the Dask runner's job.
@flow(name="refresh", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=1))  # type: ignore[arg-type]
def refresh_flow(settings: Settings | None = None) -> RefreshSummary:
    """Compute features for posts that have none (or stale ones), validate, write, materialize.

    Re-running it does no work twice: a post's rows are keyed by its input hash and encoder.
    """
    settings = settings or Settings()  # a deployment run: from SMP_* env
    logger = get_run_logger()
    plan = plan_refresh(settings)
    summary = RefreshSummary(stale=plan.stale, disabled=plan.disabled)
    logger.info(
        "refresh plan: %s stale rows in %d batch(es)%s",
        ", ".join(f"{g} {n:,}" for g, n in plan.stale.items()) or "nothing",
        len(plan.batches),
        "; switched off: " + ", ".join(plan.disabled) if plan.disabled else "",
    )
    created_at = now_utc()
    futures = [compute_batch.submit(g, ids, settings, created_at) for g, ids in plan.batches]
    results: list[BatchResult] = []
    for i, future in enumerate(futures, start=1):
        result = future.result()
        results.append(result)
        summary.add(result)
        logger.info(
            "batch %d/%d (%s): %s posts written to %s%s",
            i,
            len(futures),
            result.group,
            f"{max(result.rows_written.values(), default=0):,}",
            ", ".join(result.rows_written) or "nothing",
            f", {len(result.failures)} validation failure(s)" if result.failures else "",
        )
        for failure in result.failures:
            logger.warning(failure)
    if any(r.quarantine for r in results):
        from smp_platform.warehouse import Warehouse

        with Warehouse(settings.warehouse_path) as warehouse:
            warehouse.quarantine_features(
                [(pid, f"{r.group}: {why}") for r in results for pid, why in r.quarantine]
            )
    summary.materialized_windows = materialize(settings, results)
    logger.info("refresh done: %s", summary)
    return summary
