"""Draft scoring latency: ``POST /v1/popularity:score`` with text embedding and perplexity, on
this machine's CPU, against the plain lookup by post_id in the same run.

Prints p50/p99 of

1. the plain lookup's hot path (online read + model matrix + CatBoost) for stored posts: the
   baseline;
2. scoring a draft in this process (:func:`smp_platform.online.scoring.score_draft`, models loaded
   once before timing), with the split: tabular features, text encoder, perplexity LM, model;
3. the same drafts over HTTP against the service in this process (JSON, validation, thread
   hand-off included), and ``?explain=true&best_time=true``;

and the ratio draft / lookup. The drafts are the bundled posts in SMP-Video's fields (each a
different text, so nothing is served from a cache). Target (issue 12): p50 <= 80 ms.

    .venv/bin/python benchmarks/score_latency.py                      # builds a platform
    .venv/bin/python benchmarks/score_latency.py --data-dir .smp-demo # after `make demo`
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from smp_platform.core.config import use_offline_environment

use_offline_environment()
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import line, percentile_ms  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "smp-video" / "train"


def bundled_drafts(n: int) -> list[dict]:  # type: ignore[type-arg]
    """The bundled posts as drafts (post, video and user rows as in the files, no pid)."""
    rows = {}
    for kind, key in (("posts", "pid"), ("videos", "pid"), ("users", "uid")):
        (path,) = sorted(BUNDLED.glob(f"*{kind}*.jsonl"))
        rows[kind] = {
            (r := json.loads(line))[key]: r for line in path.read_text().splitlines() if line
        }
    drafts = []
    for pid, post in list(rows["posts"].items())[:n]:
        draft = {"format": "smp-video", "post": {k: v for k, v in post.items() if k != "pid"}}
        if pid in rows["videos"]:
            draft["video"] = {k: v for k, v in rows["videos"][pid].items() if k != "pid"}
        if post["uid"] in rows["users"]:
            draft["user"] = rows["users"][post["uid"]]
        drafts.append(draft)
    return drafts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="a data dir with a @champion")
    parser.add_argument("--posts", type=int, default=600, help="posts when building")
    parser.add_argument("--drafts", type=int, default=100, help="drafts timed")
    parser.add_argument("--http", type=int, default=40, help="drafts timed over HTTP")
    args = parser.parse_args()

    import httpx
    import numpy as np
    from online_latency import platform_settings

    from smp_platform.features.registry import groups_for
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.infra.warehouse import Warehouse
    from smp_platform.online.authors import AuthorIndex
    from smp_platform.online.scorer import Scorer
    from smp_platform.online.scoring import draft_groups, load_draft_models, score_draft
    from smp_platform.service.champion import read_champion
    from smp_platform.service.reader import OnlineReader
    from smp_platform.service.runner import running_service
    from smp_platform.sources import parse_draft

    settings = platform_settings(args.data_dir, args.posts, "smp-bench-score-")
    champion = read_champion(settings, None).loaded
    if champion is None:
        raise SystemExit(f"no @champion in {settings.root}: run `make demo` or omit --data-dir")
    scorer = Scorer(champion.predictor)
    reader = OnlineReader(FeatureStoreGateway(settings).store, champion.feature_service)
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        post_ids = warehouse.posts_frame()["post_id"].astype(str).tolist()
    authors = AuthorIndex.from_warehouse(settings.warehouse_path)
    drafts = bundled_drafts(args.drafts)
    parsed = [parse_draft(d) for d in drafts]

    started = time.perf_counter()
    needed, _ = draft_groups(groups_for(settings), scorer)
    load_draft_models(settings, needed)
    encoders = sorted(g.name for g in needed if g.has_model)
    print(f"models loaded once: {encoders} in {time.perf_counter() - started:.1f} s")

    # 1. the plain lookup (baseline)
    lookup = []
    for pid in (post_ids * 4)[: max(400, args.drafts)]:
        t0 = time.perf_counter()
        block = reader.read([pid])
        scorer.predict(block, np.array([0]))
        lookup.append(time.perf_counter() - t0)

    # 2. drafts in this process, with the split
    for draft in parsed[:10]:  # warm-up
        score_draft(draft, scorer, authors, settings)
    total, cpu, split = [], [], []
    for draft in parsed:
        t0, c0 = time.perf_counter(), time.process_time()
        result = score_draft(draft, scorer, authors, settings)
        total.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        split.append(result.timings)
    parts: dict[str, list[float]] = {
        "  the draft as inputs (author as of its time)": [t.inputs_s for t in split],
        **{
            f"  feature group {group.name}": [t.groups_s.get(group.name, 0.0) for t in split]
            for group in needed
        },
        "  model (block, matrix, CatBoost)": [t.model_s for t in split],
    }
    explained = []
    for draft in parsed[:20]:
        t0 = time.perf_counter()
        score_draft(draft, scorer, authors, settings, explain=True, best_time=True)
        explained.append(time.perf_counter() - t0)

    # 3. over HTTP (the service in this process: the encoders are the same cached ones)
    http, http_full = [], []
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        client.post("/v1/popularity:score", json=drafts[0]).raise_for_status()
        for draft in drafts[: args.http]:
            t0 = time.perf_counter()
            client.post("/v1/popularity:score", json=draft).raise_for_status()
            http.append(time.perf_counter() - t0)
        for draft in drafts[:10]:
            t0 = time.perf_counter()
            client.post(
                "/v1/popularity:score", params={"explain": "true", "best_time": "true"}, json=draft
            ).raise_for_status()
            http_full.append(time.perf_counter() - t0)

    print(
        f"\n{len(parsed)} drafts, {len(lookup)} lookups, champion v{champion.version} "
        f"({champion.feature_service}), models {encoders}"
    )
    print(line("plain lookup by post_id (read + model)", lookup))
    print(line("draft, in process (target p50 <= 80 ms)", total))
    # CPU seconds of all threads: what the draft costs the machine, whatever else runs on it
    print(line("  its CPU time (all threads)", cpu))
    for name, samples in parts.items():
        print(line(name, samples))
    print(line("draft + explain + best_time (48 h), in process", explained))
    print(line("draft over HTTP", http))
    print(line("draft + explain + best_time over HTTP", http_full))
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"load average (1 min) at the end: {load} on {os.cpu_count()} cores")
    ratio = percentile_ms(total, 0.5) / percentile_ms(lookup, 0.5)
    modelled = {g.name for g in needed if g.has_model}
    in_models = sum(s for t in split for g, s in t.groups_s.items() if g in modelled)
    print(
        f"\ndraft / lookup p50: {ratio:.0f}x; the groups with a model are "
        f"{100 * in_models / sum(total):.0f}% of a draft's time"
    )


if __name__ == "__main__":
    main()
