"""``smp demo``: ingest -> refresh -> train -> promote -> ablation -> report -> an online answer
for an unseen post, on the bundled SMP-Video sample, ending with a summary table."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flows.promote import run_promote
from flows.refresh import run_refresh
from flows.train import run_train
from smp_platform.core.config import Settings
from smp_platform.infra.warehouse import Warehouse
from smp_platform.pipeline.evaluate import evaluate
from smp_platform.pipeline.ingest import ingest, slice_smp_video
from smp_platform.pipeline.report import write_reports
from smp_platform.service.runner import running_service

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_TRAIN = REPO_ROOT / "data" / "smp-video" / "train"
BUNDLED_UNLABELED = REPO_ROOT / "data" / "smp-video" / "unlabeled"


def demo(
    settings: Settings,
    data: Path | None = None,
    *,
    with_ablation: bool = True,
    unseen_posts: int = 200,
) -> None:
    console = Console()
    started = time.perf_counter()
    train_dir = Path(data) if data else BUNDLED_TRAIN
    console.rule("[bold]smp-platform demo")
    console.print(f"data dir: {settings.root}")
    loaded = ingest(settings, "smp-video", train_dir)
    console.print(f"[bold]1/7 ingest[/] {train_dir}: {escape(str(loaded))}")
    unseen_dir = None
    if data is None and unseen_posts > 0:
        # A slice of the unlabelled posts: enough to show online prediction of posts the model
        # never saw without paying the perplexity pass for all 2,000 (`smp predict` does those).
        unseen_dir = slice_smp_video(BUNDLED_UNLABELED, settings.root / "demo-unseen", unseen_posts)
        summary = ingest(settings, "smp-video", unseen_dir, with_labels=False)
        console.print(f"           {unseen_posts} unlabelled posts: {escape(str(summary))}")
    console.print("[bold]2/7 refresh[/]")
    refreshed = run_refresh(settings, show_progress=True)
    console.print(f"           {escape(str(refreshed))}")
    outcome = run_train(settings)
    console.print(f"[bold]3/7 train[/]: {escape(str(outcome))}")
    decision = run_promote(settings, outcome.version)
    console.print(f"[bold]4/7 promote[/]: {escape(str(decision))}")
    if with_ablation:
        console.print("[bold]5/7 ablation[/] (time-split validation posts)")
        console.print(escape(evaluate(settings)))
    else:
        console.print("[bold]5/7 ablation[/]: skipped")
    figures = write_reports(settings)
    console.print(f"[bold]6/7 report[/]: {len(figures)} figures in {settings.reports_dir}")
    post_id, n_posts = _demo_post(settings, unseen=unseen_dir is not None)
    with running_service(settings) as url:
        response = httpx.get(f"{url}/v1/posts/{post_id}/popularity", timeout=30)
    lookup = f"GET /v1/posts/{post_id}/popularity -> {response.status_code}"
    console.print(f"[bold]7/7 online[/] {lookup} {escape(str(response.json()))}")

    champion = decision.candidate_version if decision.promoted else decision.champion_version
    body = response.json()
    table = Table(title="smp-platform demo: summary", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("posts in the warehouse", f"{n_posts:,}")
    table.add_row("feature rows written", f"{sum(refreshed.written.values()):,}")
    if refreshed.disabled:
        table.add_row("feature groups off", ", ".join(refreshed.disabled))
    table.add_row(
        "validation (latest posts)",
        f"SRC {outcome.metrics['src']:.3f}  MAE {outcome.metrics['mae']:.3f}  "
        f"(median baseline MAE {outcome.baseline['mae']:.3f})",
    )
    table.add_row("champion version", f"{settings.train.model_name} v{champion}")
    table.add_row(
        "lookup example",
        f"{lookup}: popularity {body.get('popularity', float('nan')):.3f}"
        if response.status_code == 200
        else f"{lookup}: {escape(str(body))}",
    )
    table.add_row("wall time", f"{time.perf_counter() - started:,.0f} s")
    console.print(table)


def _demo_post(settings: Settings, *, unseen: bool) -> tuple[str, int]:
    """A post to look up (an unlabelled one when there are), and the number of posts."""
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        posts = warehouse.posts_frame()
        labels = warehouse.labels_frame()
    candidates = posts[~posts["post_id"].isin(labels["post_id"])] if unseen else posts
    if candidates.empty:
        candidates = posts
    return str(pd.Series(candidates["post_id"]).iloc[-1]), len(posts)
