"""The report verb: the paper's figures for the current data, written to the reports dir and
logged to MLflow as a run of their own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from smp_platform.core.config import Settings
from smp_platform.features.registry import groups_for
from smp_platform.infra.mlflow_registry import ModelRegistry
from smp_platform.modeling.figures import pyplot, similarity_columns, write_report
from smp_platform.modeling.fit import time_split, train_model
from smp_platform.online.files import score_file
from smp_platform.pipeline.frames import feature_spec, labelled_frame, served_columns
from smp_platform.pipeline.monitor import LatestDrift, latest_drift


def write_reports(settings: Settings) -> list[Path]:
    """PNG figures under ``<data dir>/reports`` (also logged to MLflow)."""
    import mlflow

    service = settings.feature_service
    groups = groups_for(settings)
    frame = labelled_frame(settings, service)
    train, _ = time_split(frame, settings.train.validation_fraction)
    spec = feature_spec(groups, served_columns(settings, service))
    trained = train_model(train, settings.train, spec)
    similarities = similarity_columns(groups.fields.values())
    paths = write_report(frame, trained, settings.reports_dir, similarities=similarities)
    with ModelRegistry(settings).run(f"report-{datetime.now(UTC):%Y%m%dT%H%M%S}"):
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path="report")
    return paths


def write_draft_curve(settings: Settings, draft_path: Path) -> Path:
    """The champion's prediction for a draft at each of the next 48 hours, as a PNG under
    ``<data dir>/reports`` (the best hours marked)."""
    plt = pyplot()
    body = score_file(settings, draft_path, best_time=True)
    times = pd.to_datetime([p["post_time"] for p in body["curve"]])
    values = [p["popularity"] for p in body["curve"]]
    best = body["best_times"]
    fig, ax = plt.subplots(figsize=(9, 3.8))
    ax.plot(times, values, marker=".", color="tab:blue", label="predicted popularity")
    ax.scatter(
        pd.to_datetime([p["post_time"] for p in best]),
        [p["popularity"] for p in best],
        color="tab:red",
        zorder=3,
        label=f"best {len(best)} hours",
    )
    ax.axvline(times[0], color="grey", linestyle=":", label="the draft's post_time")
    ax.set_xlabel("publication time (UTC)")
    ax.set_ylabel("popularity")
    ax.set_title(
        f"{Path(draft_path).name}: {body['model_name']} v{body['model_version']}, "
        f"best {best[0]['post_time']} ({best[0]['popularity']:.3f})"
    )
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    path = settings.reports_dir / f"best-time-{Path(draft_path).stem}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# The drift table's columns, as `smp report --drift` and the refresh's Prefect artifact show it.
DRIFT_COLUMNS = (
    ("feature", "left"),
    ("kind", "left"),
    ("PSI", "right"),
    ("nulls ref", "right"),
    ("nulls batch", "right"),
    ("unseen", "right"),
    ("unseen examples", "left"),
)


def drift_rows(table: pd.DataFrame) -> list[tuple[dict[str, str], bool]]:
    """Each feature of a drift table (``drift.csv``) as shown: its formatted cells by
    :data:`DRIFT_COLUMNS` name, and whether it drifted."""
    rows = []
    for row in table.itertuples():
        unseen = "" if pd.isna(row.unseen_share) else f"{row.unseen_share:.2f}"
        examples = "" if pd.isna(row.unseen_examples) else str(row.unseen_examples)
        cells = {
            "feature": str(row.feature),
            "kind": str(row.kind),
            "PSI": f"{row.psi:.3f}",
            "nulls ref": f"{row.reference_null_share:.2f}",
            "nulls batch": f"{row.batch_null_share:.2f}",
            "unseen": unseen,
            "unseen examples": examples,
        }
        rows.append((cells, str(row.drifted).lower() == "true"))
    return rows


def drift_lines(settings: Settings) -> tuple[Any, Path | None]:
    """The latest refresh drift for a terminal: a rich renderable (the verdict and the table)
    and the plot's path (None when no refresh has measured drift yet)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    latest = latest_drift(settings)
    if latest is None:
        return Text(
            "drift: none measured yet (a refresh measures the posts it wrote once a champion "
            "exists)"
        ), None
    header = Text(drift_verdict(latest))
    table = Table(show_lines=False)
    for column, justify in DRIFT_COLUMNS:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for cells, drifted in drift_rows(latest.table):
        table.add_row(*cells.values(), style="bold red" if drifted else None)
    return Group(header, table), latest.plot


def drift_verdict(latest: LatestDrift) -> str:
    """One line on a drift run: when, which MLflow run, within the bound or not, and why."""
    tags = latest.tags
    verdict = "BEYOND THE BOUND" if tags.get("drift_beyond_bound") == "true" else "within the bound"
    return (
        f"drift of the latest refresh ({latest.started:%Y-%m-%d %H:%M} UTC, MLflow run "
        f"{latest.run_id}, {verdict}): {tags.get('drift_summary', '')}"
    )
