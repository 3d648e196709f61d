"""What a refresh leaves where operators look, as plain rows and markdown: its summary per
feature group, the drift of the posts it wrote, and its Great Expectations records (the result
file of each batch, the Data Docs site). ``flows/records.py`` publishes them as the refresh flow
run's Prefect artifacts, under the stable keys below; nothing here needs Prefect.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from smp_platform.core.config import Settings
from smp_platform.pipeline.monitor import LatestDrift, latest_drift
from smp_platform.pipeline.refresh import BatchResult, RefreshPlan, RefreshSummary
from smp_platform.pipeline.report import DRIFT_COLUMNS, drift_rows, drift_verdict
from smp_platform.validation.records import run_results, run_results_dir

log = logging.getLogger(__name__)

# Prefect artifact keys (lowercase letters, digits and dashes): each run adds a version.
SUMMARY_KEY = "refresh-summary"
DRIFT_KEY = "refresh-drift"
VALIDATION_KEY = "refresh-validation"
DATA_DOCS_KEY = "refresh-data-docs"
TOTAL = "(all groups)"
NOT_MEASURED = "not measured"


def summary_rows(
    plan: RefreshPlan, results: Sequence[BatchResult], summary: RefreshSummary
) -> list[dict[str, Any]]:
    """One row per feature group (stale posts, batches, failed batches, posts and rows written,
    quarantined inputs; why it was switched off), then a total that matches the summary line,
    with the run's materialization windows (the online store is written per view, not group)."""
    rows = []
    for group in [*plan.stale, *(g for g in plan.disabled if g not in plan.stale)]:
        mine = [r for r in results if r.group == group]
        rows.append(
            {
                "group": group,
                "stale posts": plan.stale.get(group, 0),
                "batches": sum(1 for g, _ in plan.batches if g == group),
                "failed batches": sum(1 for r in mine if r.failures),
                "posts written": sum(len(r.post_ids) for r in mine),
                "rows written": sum(sum(r.rows_written.values()) for r in mine),
                "quarantined": sum(len(r.quarantine) for r in mine),
                "materialization windows": None,
                "switched off": plan.disabled.get(group, ""),
            }
        )
    rows.append(
        {
            "group": TOTAL,
            "stale posts": sum(plan.stale.values()),
            "batches": len(plan.batches),
            "failed batches": sum(1 for r in results if r.failures),
            "posts written": sum(len(r.post_ids) for r in results),
            "rows written": sum(summary.written.values()),
            "quarantined": summary.quarantined,
            "materialization windows": summary.materialized_windows,
            "switched off": ", ".join(plan.disabled),
        }
    )
    return rows


def summary_description(
    summary: RefreshSummary, results_folder: Path | None, data_docs: Path | None
) -> str:
    """The artifact's description: the summary line, the failures, and where the records are."""
    lines = [f"**{'Failed' if summary.failed else 'Completed'}**: {summary}", ""]
    lines += [f"- failed: {failure}" for failure in summary.failures]
    if results_folder is not None:
        lines.append(f"- Great Expectations results (JSON per batch): `{results_folder}`")
    if data_docs is not None:
        lines.append(f"- Data Docs: [{data_docs}]({data_docs.as_uri()})")
    return "\n".join(lines)


def validation_rows(root: Path, created_at: datetime) -> list[dict[str, Any]]:
    """One row per batch result this refresh kept: view, batch, passed, the expectations GE
    counted failed, and the JSON file."""
    rows = []
    for path in run_results(root, created_at):
        result = json.loads(path.read_text(encoding="utf-8"))
        stats = result.get("statistics", {})
        view, _, batch = path.stem.partition("-")
        rows.append(
            {
                "view": view,
                "batch": batch,
                "passed": bool(result.get("success")),
                "failed expectations": (
                    f"{stats.get('unsuccessful_expectations', '?')} of "
                    f"{stats.get('evaluated_expectations', '?')}"
                ),
                "result": str(path),
            }
        )
    return rows


def results_folder(root: Path, created_at: datetime) -> Path | None:
    """The refresh's results folder, None when it validated no batch."""
    folder = run_results_dir(root, created_at)
    return folder if folder.is_dir() else None


def drift_markdown(settings: Settings, drift_line: str) -> str:
    """The drift of the posts this refresh wrote: the verdict, the table (drifted features in
    bold) and the plot's path (the latest copy under the reports dir) and MLflow URI."""
    if not drift_line or drift_line.startswith(NOT_MEASURED):
        return f"# Drift\n\n{drift_line or NOT_MEASURED}\n"
    latest = latest_drift(settings)
    # The newest drift run is this refresh's when its summary is this refresh's line.
    if latest is None or latest.tags.get("drift_summary") != drift_line[:5000]:
        return f"# Drift\n\n{drift_line}\n\n(the drift run of this refresh was not found)\n"
    return drift_table_markdown(latest)


def drift_table_markdown(latest: LatestDrift) -> str:
    """A drift run as markdown: its verdict, its table, and where its plot is."""
    names = [name for name, _ in DRIFT_COLUMNS]
    lines = ["# Drift", "", drift_verdict(latest), ""]
    lines.append("| " + " | ".join(names) + " |")
    lines.append("|" + "|".join("---:" if j == "right" else "---" for _, j in DRIFT_COLUMNS) + "|")
    for cells, drifted in drift_rows(latest.table):
        shown = [cells[n].replace("|", "\\|") for n in names]
        if drifted:
            shown = [f"**{cell}**" if cell else cell for cell in shown]
        lines.append("| " + " | ".join(shown) + " |")
    lines.append("")
    mlflow_uri = f"runs:/{latest.run_id}/drift/drift.png"
    if latest.plot is not None:
        lines.append(
            f"Plot: [{latest.plot}]({latest.plot.as_uri()}) (the latest drift's copy; "
            f"MLflow keeps this run's at `{mlflow_uri}`)"
        )
    else:
        lines.append(f"Plot: none in MLflow run {latest.run_id}")
    return "\n".join(lines) + "\n"
