"""The refresh flow run's records for operators: Data Docs of its Great Expectations results,
and its Prefect artifacts (keys in :mod:`smp_platform.pipeline.records`):

- ``refresh-summary`` (table): per feature group stale posts, batches, failed batches, posts and
  rows written, quarantined; a total row with the materialization windows; the description
  names the results folder and the Data Docs;
- ``refresh-drift`` (markdown): the written posts' drift, its table and the plot's path;
- ``refresh-validation`` (table): each batch's result file, passed or not;
- ``refresh-data-docs`` (link): the Data Docs index.

The features are stored and online before this runs: a record that cannot be written is logged
and never fails the refresh.
"""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NONE

from smp_platform.core.config import Settings
from smp_platform.pipeline import records
from smp_platform.pipeline.refresh import BatchResult, RefreshPlan, RefreshSummary
from smp_platform.validation import build_data_docs


@task(name="keep-refresh-records", cache_policy=NONE)
def keep_records(
    settings: Settings,
    plan: RefreshPlan,
    results: list[BatchResult],
    summary: RefreshSummary,
    created_at: datetime,
) -> None:
    """Build this run's Data Docs pages (once, after every batch) and publish the artifacts."""
    logger = get_run_logger()
    root = settings.root
    docs = None
    try:
        docs = build_data_docs(root, created_at)
    except Exception as exc:
        logger.warning("Data Docs not built: %r", exc, exc_info=True)
    folder = records.results_folder(root, created_at)
    try:
        create_table_artifact(
            key=records.SUMMARY_KEY,
            table=records.summary_rows(plan, results, summary),
            description=records.summary_description(summary, folder, docs),
        )
        rows = records.validation_rows(root, created_at)
        if rows:
            create_table_artifact(
                key=records.VALIDATION_KEY,
                table=rows,
                description=f"Great Expectations result of each batch, under `{folder}`",
            )
        if docs is not None:
            create_link_artifact(
                key=records.DATA_DOCS_KEY,
                link=docs.as_uri(),
                link_text="Great Expectations Data Docs",
                description=f"Every refresh's validation results, newest first: `{docs}`",
            )
        create_markdown_artifact(
            key=records.DRIFT_KEY,
            markdown=records.drift_markdown(settings, summary.drift),
            description="The posts this refresh wrote against the champion's training frame",
        )
    except Exception as exc:
        logger.warning("refresh artifacts not (all) published: %r", exc, exc_info=True)
