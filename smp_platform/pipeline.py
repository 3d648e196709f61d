"""What the CLI commands do, in one place: each function takes the settings and runs one stage
(through its Prefect flow where there is one)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from smp_platform.config import Settings
from smp_platform.errors import UserError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_TRAIN = REPO_ROOT / "data" / "smp-video" / "train"
BUNDLED_UNLABELED = REPO_ROOT / "data" / "smp-video" / "unlabeled"


def ingest(settings: Settings, fmt: str, path: Path, *, with_labels: bool = True) -> Any:
    """Parse a dataset directory and upsert it into the warehouse; returns the summary."""
    from smp_platform.sources import read_source
    from smp_platform.warehouse import Warehouse

    batch = read_source(fmt, Path(path), with_labels=with_labels)  # type: ignore[arg-type]
    with Warehouse(settings.warehouse_path) as warehouse:
        return warehouse.ingest(batch)


def task_runner(settings: Settings, use_dask: bool) -> Any:
    if not use_dask:
        return None
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


def refresh(settings: Settings, *, use_dask: bool = False) -> Any:
    from flows.refresh import refresh_flow

    runner = task_runner(settings, use_dask)
    flow = refresh_flow.with_options(task_runner=runner) if runner else refresh_flow
    return flow(settings)


def train(settings: Settings) -> Any:
    from flows.train import train_flow

    return train_flow(settings)


def promote(settings: Settings, version: str | None = None) -> Any:
    from flows.promote import promote_flow

    return promote_flow(settings, version)


def predict_batch(settings: Settings, fmt: str, path: Path, output: Path) -> int:
    """Load posts (without labels), refresh their features, and let the champion predict them."""
    from smp_platform.sources import read_source
    from smp_platform.training import current_champion, predict_posts

    if current_champion(settings) is None:  # say so before computing any feature
        raise UserError(
            f"no @champion of {settings.train.model_name}: run `smp train` and `smp promote` first"
        )
    batch = read_source(fmt, Path(path), with_labels=False)  # type: ignore[arg-type]
    post_ids = batch.posts["post_id"].tolist()
    if not post_ids:
        raise UserError(f"no valid posts in {path}")
    ingest(settings, fmt, path, with_labels=False)
    refresh(settings)
    predictions = predict_posts(settings, post_ids)
    output.parent.mkdir(parents=True, exist_ok=True)
    predictions[["post_id", "popularity"]].to_csv(output, index=False)
    return len(predictions)


def ablation(settings: Settings) -> str:
    from smp_platform.training import run_ablation_table

    return run_ablation_table(settings)


def report(settings: Settings) -> list[Path]:
    from smp_platform.training import write_reports

    return write_reports(settings)


@contextmanager
def running_service(settings: Settings, poll_seconds: float = 0.0) -> Iterator[str]:
    """The prediction service on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    from smp_platform.service.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, poll_seconds=poll_seconds),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the prediction service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def slice_smp_video(src: Path, out: Path, n_posts: int, *, with_labels: bool = True) -> Path:
    """The earliest ``n_posts`` posts of an SMP-Video directory, with their users, videos and
    (unless ``with_labels`` is False) labels: a smaller dataset of the same format."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    files = sorted(src.glob("*.jsonl"))
    posts_file = next(p for p in files if "posts" in p.name)
    lines = [line for line in posts_file.read_text().splitlines() if line.strip()]
    records = sorted(
        ((json.loads(line), line) for line in lines), key=lambda r: (r[0]["post_time"], r[0]["pid"])
    )[:n_posts]
    pids, uids = {r["pid"] for r, _ in records}, {r["uid"] for r, _ in records}
    for path in files:
        if "popularity" in path.name and not with_labels:
            continue
        if path == posts_file:
            kept = [line for _, line in records]
        else:
            key, wanted = ("uid", uids) if "users" in path.name else ("pid", pids)
            kept = [
                line
                for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get(key) in wanted
            ]
        (out / path.name).write_text("".join(line + "\n" for line in kept))
    return out


def demo(
    settings: Settings,
    data: Path | None = None,
    *,
    with_ablation: bool = True,
    unseen_posts: int = 200,
) -> None:
    """Ingest -> refresh -> train -> promote -> metrics -> online prediction of an unseen post."""
    import httpx
    from rich.console import Console
    from rich.markup import escape

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
    console.print(f"[bold]2/7 refresh[/]: {escape(str(refresh(settings)))}")
    outcome = train(settings)
    console.print(f"[bold]3/7 train[/]: {escape(str(outcome))}")
    console.print(f"[bold]4/7 promote[/]: {escape(str(promote(settings, outcome.version)))}")
    if with_ablation:
        console.print("[bold]5/7 ablation[/] (time-split validation posts)")
        console.print(escape(ablation(settings)))
    else:
        console.print("[bold]5/7 ablation[/]: skipped")
    figures = report(settings)
    console.print(f"[bold]6/7 report[/]: {len(figures)} figures in {settings.reports_dir}")
    post_id = _demo_post(settings, unseen=unseen_dir is not None)
    with running_service(settings) as url:
        response = httpx.get(f"{url}/v1/posts/{post_id}/popularity", timeout=30)
    console.print(
        f"[bold]7/7 online[/] GET /v1/posts/{post_id}/popularity -> "
        f"{response.status_code} {escape(str(response.json()))}"
    )
    console.rule(
        f"validation SRC {outcome.metrics['src']:.3f}  MAE {outcome.metrics['mae']:.3f}  "
        f"(median baseline MAE {outcome.baseline['mae']:.3f})  "
        f"in {time.perf_counter() - started:,.0f} s"
    )


def _demo_post(settings: Settings, *, unseen: bool) -> str:
    from smp_platform.warehouse import Warehouse

    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        posts = warehouse.posts_frame()
        labels = warehouse.labels_frame()
    candidates = posts[~posts["post_id"].isin(labels["post_id"])] if unseen else posts
    if candidates.empty:
        candidates = posts
    return str(pd.Series(candidates["post_id"]).iloc[-1])
