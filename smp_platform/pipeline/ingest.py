"""The ingest verb: a dataset directory -> the warehouse (an idempotent upsert by post_id)."""

from __future__ import annotations

import json
from pathlib import Path

from smp_platform.core.config import Settings
from smp_platform.infra.warehouse import IngestSummary, Warehouse
from smp_platform.sources import read_source


def ingest(settings: Settings, fmt: str, path: Path, *, with_labels: bool = True) -> IngestSummary:
    """Parse a dataset directory and upsert it into the warehouse; returns the summary."""
    batch = read_source(fmt, Path(path), with_labels=with_labels)
    with Warehouse(settings.warehouse_path) as warehouse:
        return warehouse.ingest(batch)


def slice_smp_video(src: Path, out: Path, n_posts: int, *, with_labels: bool = True) -> Path:
    """The earliest ``n_posts`` posts of an SMP-Video directory, with their users, videos and
    (unless ``with_labels`` is False) labels: a smaller dataset of the same format."""
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
