"""Nightly feature refresh: new or changed posts -> validated features -> offline + online store.

The work is :mod:`smp_platform.pipeline.refresh`; this flow runs its batches as Prefect tasks
(threads in process, or Dask workers) and shows one progress bar per feature group; the run's
records (Data Docs, Prefect artifacts) are :mod:`flows.records`'.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.records import keep_records
from smp_platform.core.config import Settings, bound_settings, run_settings
from smp_platform.core.errors import RefreshFailed
from smp_platform.core.locking import writer_lock
from smp_platform.core.logs import use_log_format
from smp_platform.core.progress import stage_progress
from smp_platform.pipeline import refresh


@task(name="compute-feature-batch", cache_policy=NONE, retries=1)
def compute_batch(
    group: str, post_ids: list[str], settings: Settings, created_at: datetime
) -> refresh.BatchResult:
    use_log_format(settings.log_format)  # on Dask, a worker process Prefect set up for itself
    return refresh.process_batch(group, post_ids, settings, created_at)


@task(name="finish-refresh", cache_policy=NONE)
def finish(
    settings: Settings, plan: refresh.RefreshPlan, results: list[refresh.BatchResult]
) -> refresh.RefreshSummary:
    return refresh.finish_refresh(settings, plan, results)


def dask_task_runner(settings: Settings) -> Any:
    """settings.dask_address, else a LocalCluster of ``dask_workers`` processes."""
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": settings.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
        },
    )


# In process, batches run one at a time: each model batch already uses every core through
# torch, and concurrent batches would only fight over them. Scale-out is the Dask runner's job.
@flow(name="refresh", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=1))  # type: ignore[arg-type]
def refresh_flow(
    data_dir: str | None = None, show_progress: bool = False
) -> refresh.RefreshSummary:
    """Compute features for posts that have none (or stale ones), validate, write, materialize.

    Re-running it does no work twice: a post's rows are keyed by its input hash and encoder, and
    parts are materialized once (and surely) by their record. A failed batch does not stop the
    others; the run then ends Failed (no Completed event: the nightly model job does not start),
    and the failed posts are still stale for the next run. Settings come from the caller's
    :func:`~smp_platform.core.config.bound_settings` or the environment, never from a parameter.
    """
    settings = run_settings(data_dir)
    use_log_format(settings.log_format)
    logger = get_run_logger()
    with writer_lock(settings.root, "refresh", settings.lock_timeout_s):
        plan = refresh.plan_refresh(settings)
        logger.info(
            "refresh plan: %s stale rows in %d batch(es)%s",
            ", ".join(f"{g} {n:,}" for g, n in plan.stale.items()) or "nothing",
            len(plan.batches),
            "; switched off: " + ", ".join(plan.disabled) if plan.disabled else "",
        )
        created_at = refresh.now_utc()
        futures = [compute_batch.submit(g, ids, settings, created_at) for g, ids in plan.batches]
        results: list[refresh.BatchResult] = []
        totals = {group: plan.posts(group) for group in plan.stale}
        with stage_progress(totals, enabled=show_progress) as bars:
            for (group, ids), future in zip(plan.batches, futures, strict=True):
                try:
                    result = future.result()
                except Exception as error:  # one failed batch must not stop the others
                    result = refresh.failed_batch(group, ids, error)
                results.append(result)
                bars.advance(group, len(ids))
        summary = finish(settings, plan, results)
        keep_records(settings, plan, results, summary, created_at)  # Data Docs, artifacts
    if summary.failed:
        # A Failed state, not a raise: the run is Failed (no Completed event, so the nightly
        # model job does not start) and says why, without a traceback for a known outcome.
        return Failed(message=summary.failure_message(), data=summary)  # type: ignore[return-value]
    logger.info("refresh done: %s", summary)
    return summary


def run_refresh(
    settings: Settings, *, use_dask: bool = False, show_progress: bool = False
) -> refresh.RefreshSummary:
    """The refresh flow with these settings (bound in this process, not passed to Prefect), on
    Dask when asked. Raises RefreshFailed (exit code 1) when a batch failed."""
    flow_ = (
        refresh_flow.with_options(task_runner=dask_task_runner(settings))
        if use_dask
        else refresh_flow
    )
    with bound_settings(settings):
        state = flow_(data_dir=str(settings.root), show_progress=show_progress, return_state=True)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, refresh.RefreshSummary):
        if state.is_failed():
            raise RefreshFailed(outcome.failure_message())
        return outcome
    state.result()  # a bug or an error in the run: raise it as it was raised
    raise RuntimeError(f"refresh ended in state {state.type}: {state.message}")
