"""Helpers shared by tests: small real datasets cut from the bundled sample, fast settings."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "data" / "smp-video"


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_subset(
    split: str,
    out_dir: Path,
    post_ids: set[str] | None = None,
    n: int | None = None,
    *,
    with_labels: bool = True,
) -> Path:
    """Copy part of a bundled split: the first ``n`` posts by time (or the given ids)."""
    src = BUNDLED / split
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {p.name: p for p in src.glob("*.jsonl")}
    posts_file = next(name for name in files if "posts" in name)
    posts = sorted(_read_jsonl(files[posts_file]), key=lambda r: (r["post_time"], r["pid"]))
    if post_ids is None:
        posts = posts[:n]
    else:
        posts = [p for p in posts if p["pid"] in post_ids]
    pids = {p["pid"] for p in posts}
    uids = {p["uid"] for p in posts}
    for name, path in files.items():
        if "popularity" in name and not with_labels:
            continue
        rows = _read_jsonl(path)
        if "users" in name:
            rows = [r for r in rows if r["uid"] in uids]
        elif "posts" in name:
            rows = posts
        else:
            rows = [r for r in rows if r["pid"] in pids]
        (out_dir / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out_dir


def fast_train_settings(**overrides):  # type: ignore[no-untyped-def]
    from smp_platform.config import TrainSettings

    values = dict(iterations=150, adapter_epochs=5, adapter_folds=3, embedding_components=4)
    values.update(overrides)
    return TrainSettings(**values)
