"""The refresh's records as rows and markdown (smp_platform/pipeline/records.py) and the kept
result files (smp_platform/validation/records.py), on hand-made runs with known answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from smp_platform.pipeline import records
from smp_platform.pipeline.monitor import LatestDrift
from smp_platform.pipeline.refresh import BatchResult, RefreshPlan, RefreshSummary
from smp_platform.validation.records import (
    batch_identifier,
    keep_results,
    run_results,
    run_results_dir,
)
from smp_platform.validation.runner import ValidationReport

CREATED = datetime(2025, 3, 1, 2, 0, 0, 123456, tzinfo=UTC)


def _plan_and_results() -> tuple[RefreshPlan, list[BatchResult], RefreshSummary]:
    plan = RefreshPlan(
        batches=[("alpha", ["a1", "a2"]), ("alpha", ["a3"]), ("beta", ["a1", "a2", "a3"])],
        stale={"alpha": 3, "beta": 3},
        disabled={"gamma": "no weights configured"},
    )
    results = [
        BatchResult("alpha", {"v_one": 2, "v_two": 2}, post_ids=["a1", "a2"]),
        BatchResult("alpha", failures=["v_one: 1 of 9 expectations failed"]),
        BatchResult(
            "beta", {"v_three": 2}, quarantine=[("a3", "unreadable image")], post_ids=["a1", "a2"]
        ),
    ]
    summary = RefreshSummary(stale=plan.stale, disabled=plan.disabled)
    for result in results:
        summary.add(result)
    summary.materialized_windows = 3
    return plan, results, summary


def test_summary_rows_count_each_group_and_total_the_summary() -> None:
    plan, results, summary = _plan_and_results()
    rows = {row["group"]: row for row in records.summary_rows(plan, results, summary)}
    assert list(rows) == ["alpha", "beta", "gamma", records.TOTAL]
    alpha, beta, gamma, total = (rows[g] for g in ("alpha", "beta", "gamma", records.TOTAL))
    assert (alpha["stale posts"], alpha["batches"], alpha["failed batches"]) == (3, 2, 1)
    assert (alpha["posts written"], alpha["rows written"], alpha["quarantined"]) == (2, 4, 0)
    assert (beta["batches"], beta["rows written"], beta["quarantined"]) == (1, 2, 1)
    assert gamma["switched off"] == "no weights configured" and gamma["stale posts"] == 0
    assert alpha["materialization windows"] is None
    assert total["rows written"] == sum(summary.written.values()) == 6
    assert total["quarantined"] == summary.quarantined == 1
    assert total["failed batches"] == 1 and total["batches"] == 3
    assert total["materialization windows"] == 3


def test_the_summary_description_says_the_outcome_and_where_the_records_are(
    tmp_path: Path,
) -> None:
    _, _, summary = _plan_and_results()
    index = tmp_path / "data_docs" / "index.html"
    text = records.summary_description(summary, tmp_path / "results", index)
    assert text.startswith("**Failed**: 6 feature rows written")
    assert "- failed: v_one: 1 of 9 expectations failed" in text
    assert f"`{tmp_path / 'results'}`" in text
    assert f"({index.as_uri()})" in text
    assert records.summary_description(RefreshSummary(), None, None).startswith("**Completed**")


def test_the_drift_markdown_has_a_row_per_feature_the_drifted_in_bold_and_the_plot(
    tmp_path: Path,
) -> None:
    table = pd.DataFrame(
        {
            "feature": ["author_follower_count_log", "post_language"],
            "kind": ["numeric", "categorical"],
            "psi": [0.61, 0.02],
            "reference_null_share": [0.0, 0.1],
            "batch_null_share": [0.0, 0.1],
            "unseen_share": [None, 0.25],
            "unseen_examples": [None, "zz|yy"],
            "drifted": [True, False],
        }
    )
    plot = tmp_path / "drift.png"
    latest = LatestDrift(
        run_id="0123456789abcdef0123456789abcdef",
        started=pd.Timestamp("2025-03-01 02:10", tz="UTC"),
        tags={"drift_beyond_bound": "true", "drift_summary": "1 of 2 features with PSI > 0.25"},
        table=table,
        plot=plot,
    )
    markdown = records.drift_table_markdown(latest)
    lines = markdown.splitlines()
    assert "BEYOND THE BOUND" in lines[2] and "1 of 2 features" in lines[2]
    assert "| feature | kind | PSI | nulls ref | nulls batch | unseen | unseen examples |" in lines
    assert "| **author_follower_count_log** | **numeric** | **0.610** |" in markdown
    assert "| post_language | categorical | 0.020 | 0.10 | 0.10 | 0.25 | zz\\|yy |" in lines
    assert f"[{plot}]({plot.as_uri()})" in markdown
    assert "runs:/0123456789abcdef0123456789abcdef/drift/drift.png" in markdown


def test_a_drift_not_measured_says_why() -> None:
    markdown = records.drift_markdown(None, "not measured: no champion yet")  # type: ignore[arg-type]
    assert markdown == "# Drift\n\nnot measured: no champion yet\n"


def test_batch_names_are_safe_for_the_layout_and_differ_between_batches() -> None:
    one = batch_identifier(["P-1/x", "P2"])
    assert one.startswith("P_1_x_") and "-" not in one and "/" not in one
    assert one != batch_identifier(["P-1/x", "P3"])
    assert one == batch_identifier(["P-1/x", "P2"])  # a retried batch overwrites its file


def test_results_are_kept_per_refresh_and_a_retry_overwrites(tmp_path: Path) -> None:
    def report(view: str, success: bool) -> ValidationReport:
        result = {"success": success, "statistics": {"evaluated_expectations": 4}}
        return ValidationReport(view, success, 2, [], 4, result=result)

    paths = keep_results(tmp_path, CREATED, ["p1", "p2"], [report("v_one", True)])
    again = keep_results(tmp_path, CREATED, ["p1", "p2"], [report("v_one", False)])
    assert paths == again
    folder = run_results_dir(tmp_path, CREATED)
    assert folder.name == "refresh-20250301T020000.123456Z"
    assert run_results(tmp_path, CREATED) == paths
    assert json.loads(paths[0].read_text())["success"] is False
    assert sorted(p.name for p in folder.iterdir()) == [paths[0].name]  # no partial file left
    rows = records.validation_rows(tmp_path, CREATED)
    assert [(r["view"], r["passed"], r["failed expectations"]) for r in rows] == [
        ("v_one", False, "? of 4")
    ]
