"""Online lookup latency: the service (`smp serve`, its own process) vs a bare Feast read.

Prints, in one run on the same data dir and posts:

1. the bare Feast ``get_online_features`` of the champion's feature service, one post per call
   and 1,000 posts per call (the baseline);
2. each step of the service's hot path in this process (online read, model matrix + CatBoost,
   and the pandas/pyfunc path it replaces);
3. HTTP from separate client processes against ``smp serve --workers N``: one post per request
   at concurrency 1 and 4 (keep-alive connections, a plain ``http.client`` loop so the client
   costs little of the 2 cores), and ``POST /v1/posts/popularity:batch`` with 1,000 IDs;

and the ratios service / bare Feast.

    .venv/bin/python benchmarks/online_latency.py                      # builds a platform
    .venv/bin/python benchmarks/online_latency.py --data-dir .smp-demo # after `make demo`
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import stats, time_calls

from smp_platform.core.config import use_offline_environment

use_offline_environment()


def build_platform(root: Path, n_posts: int):  # type: ignore[no-untyped-def]
    """The bundled posts through the real pipeline with the full feature service
    (tabular + text embedding + perplexity; image needs CLIP weights and reads as null)."""
    from smp_platform.core.config import Settings, TrainSettings
    from smp_platform.demo import BUNDLED_TRAIN
    from smp_platform.pipeline.ingest import ingest, slice_smp_video
    from smp_platform.pipeline.promote import promote_candidate
    from smp_platform.pipeline.refresh import refresh
    from smp_platform.pipeline.train import train_candidate

    settings = Settings(data_dir=root, train=TrainSettings(iterations=300))
    settings.ensure_dirs()
    subset = slice_smp_video(BUNDLED_TRAIN, root / "input", n_posts)
    ingest(settings, "smp-video", subset)
    refresh(settings)
    outcome = train_candidate(settings)
    promote_candidate(settings, outcome.version)
    return settings


def platform_settings(data_dir: Path | None, n_posts: int, prefix: str):  # type: ignore[no-untyped-def]
    """Settings of ``data_dir``, or of a new platform built on ``n_posts`` bundled posts."""
    from smp_platform.core.config import Settings

    if data_dir:
        return Settings(data_dir=data_dir)
    root = Path(tempfile.mkdtemp(prefix=prefix))
    print(f"building a platform on {n_posts:,} bundled posts in {root} ...", flush=True)
    return build_platform(root, n_posts)


# -- HTTP clients (separate processes) --------------------------------------------------------
def _client_loop(port: int, paths: list[str], queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    conn = http.client.HTTPConnection("127.0.0.1", port)
    samples = []
    for path in paths:
        start = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        samples.append(time.perf_counter() - start)
        if response.status != 200:
            raise SystemExit(f"GET {path} -> {response.status}")
    queue.put(samples)


def _concurrent(port: int, paths: list[str], clients: int) -> dict[str, float]:
    """``clients`` processes each send ``paths`` (after a warm-up), one request at a time."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    _client_loop(port, paths[:50], queue)  # warm-up, in this process
    queue.get()
    procs = [ctx.Process(target=_client_loop, args=(port, paths, queue)) for _ in range(clients)]
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    samples = [s for _ in procs for s in queue.get()]
    wall = time.perf_counter() - start
    for proc in procs:
        proc.join()
    return stats(samples, wall)


def _batch_requests(port: int, body: bytes, repeat: int) -> tuple[list[float], dict]:  # type: ignore[type-arg]
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "application/json"}
    samples = []
    answer: dict = {}  # type: ignore[type-arg]
    for _ in range(repeat):
        start = time.perf_counter()
        conn.request("POST", "/v1/posts/popularity:batch", body, headers)
        response = conn.getresponse()
        payload = response.read()
        samples.append(time.perf_counter() - start)
        if response.status != 200:
            raise SystemExit(f"batch -> {response.status}: {payload[:300]!r}")
        answer = json.loads(payload)
    return samples, answer


def _start_service(data_dir: Path, workers: int) -> tuple[subprocess.Popen, int]:  # type: ignore[type-arg]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-c",
        "from smp_platform.cli import main; main()",
        "--data-dir",
        str(data_dir),
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    # A file, not a pipe nobody reads: the access log's line per request would fill a pipe and
    # stall the service.
    log = Path(tempfile.mkstemp(prefix="smp-bench-serve-", suffix=".log")[1])
    with log.open("wb") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                # every worker answers ready once the first does (same data dir); give the
                # others a moment to finish loading
                time.sleep(3 if workers > 1 else 0)
                return proc, port
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"smp serve exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("smp serve did not become ready in 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="a data dir with a @champion")
    parser.add_argument("--posts", type=int, default=1000, help="posts when building")
    parser.add_argument("--requests", type=int, default=3000, help="per client")
    parser.add_argument("--workers", type=int, default=2, help="smp serve --workers")
    parser.add_argument("--batch-repeat", type=int, default=40)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.infra.warehouse import Warehouse
    from smp_platform.online.scorer import Scorer
    from smp_platform.service.champion import read_champion
    from smp_platform.service.reader import OnlineReader

    settings = platform_settings(args.data_dir, args.posts, "smp-bench-")
    answer = read_champion(settings, None)
    if answer.loaded is None:
        raise SystemExit(f"no @champion in {settings.root}: run `make demo` or omit --data-dir")
    champion = answer.loaded
    service_name = champion.feature_service
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        post_ids = warehouse.posts_frame()["post_id"].astype(str).tolist()
    rng = np.random.default_rng(0)
    sequence = [post_ids[i] for i in rng.integers(0, len(post_ids), args.requests)]
    batch_ids = [post_ids[i % len(post_ids)] for i in range(1000)]

    # 1. bare Feast
    gateway = FeatureStoreGateway(settings)
    feature_service = gateway.feature_service(service_name)
    store = gateway.store

    def feast_read(ids: list[str]) -> dict:  # type: ignore[type-arg]
        rows = [{"post_id": p} for p in ids]
        return store.get_online_features(features=feature_service, entity_rows=rows).to_dict()

    for pid in sequence[:100]:
        feast_read([pid])
    bare_one = []
    for pid in sequence[:1000]:
        start = time.perf_counter()
        feast_read([pid])
        bare_one.append(time.perf_counter() - start)
    bare_batch = time_calls(lambda: feast_read(batch_ids), 5)

    # 2. the service's steps, in process
    reader = OnlineReader(store, service_name)
    scorer = Scorer(champion.predictor)
    one = np.array([0])
    blocks = [reader.read([pid]) for pid in sequence[:500]]
    steps = {
        "online read, 1 post": time_calls(lambda: reader.read([sequence[7]]), 500),
        "model matrix + CatBoost, 1 post": [
            t for b in blocks[:300] for t in time_calls(lambda b=b: scorer.predict(b, one), 1)
        ],
        "pandas frame + pyfunc predict_frame, 1 post": time_calls(
            lambda: champion.predictor.predict_frame(pd.DataFrame(feast_read([sequence[7]]))),
            100,
        ),
        "online read, 1,000 posts": time_calls(lambda: reader.read(batch_ids), 20),
    }
    big = reader.read(batch_ids)
    found = np.flatnonzero(big.found)
    steps["model matrix + CatBoost, 1,000 posts"] = time_calls(
        lambda: scorer.predict(big, found), 20
    )

    # same numbers as the reference path (pandas frame from Feast -> pyfunc)
    frame = pd.DataFrame(feast_read(batch_ids[:200]))
    reference = champion.predictor.predict_frame(frame)
    fast = scorer.predict(reader.read(batch_ids[:200]), np.arange(200))
    max_diff = float(np.max(np.abs(reference - fast)))

    # 3. HTTP, separate processes
    proc, port = _start_service(settings.root, args.workers)
    try:
        paths = [f"/v1/posts/{pid}/popularity" for pid in sequence]
        c1 = _concurrent(port, paths, 1)
        c4 = _concurrent(port, paths, 4)
        body = json.dumps({"post_ids": batch_ids}).encode()
        _batch_requests(port, body, 3)
        batch_samples, batch_answer = _batch_requests(port, body, args.batch_repeat)
        errors = sum("error" in e for e in batch_answer["predictions"])
    finally:
        proc.send_signal(signal.SIGTERM)
        stopped = time.perf_counter()
        proc.wait(timeout=30)
        stop_seconds = time.perf_counter() - stopped

    b1, bb = stats(bare_one), stats(bare_batch)
    hb = stats(batch_samples)
    print(
        f"\nonline lookup on {len(post_ids):,} posts, model version {champion.version}, "
        f"feature service {service_name} ({len(reader.columns)} features), "
        f"smp serve --workers {args.workers}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'':52}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}")

    def row(label: str, s: dict[str, float]) -> None:
        print(f"{label:52}{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}{s['rps']:>9.0f}")

    row("bare Feast get_online_features, 1 post", b1)
    row("bare Feast get_online_features, 1,000 posts", bb)
    print("service steps (in process):")
    for label, samples in steps.items():
        row(f"  {label}", stats(samples))
    print("HTTP from separate client processes:")
    row("  GET /v1/posts/{id}/popularity, concurrency 1", c1)
    row("  GET /v1/posts/{id}/popularity, concurrency 4", c4)
    row("  POST /v1/posts/popularity:batch, 1,000 IDs", hb)
    print(
        f"ratio endpoint (c=1) / bare Feast 1 post: p50 {c1['p50_ms'] / b1['p50_ms']:.2f}x, "
        f"p99 {c1['p99_ms'] / b1['p99_ms']:.2f}x"
    )
    print(
        f"ratio batch endpoint / bare Feast 1,000 posts: p50 "
        f"{hb['p50_ms'] / bb['p50_ms']:.3f}x ({bb['p50_ms'] / hb['p50_ms']:.0f}x faster)"
    )
    print(
        f"service vs pyfunc on 200 posts: max |difference| {max_diff:.2e}; "
        f"batch: {errors} error entries of 1,000; SIGTERM -> exit in {stop_seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
