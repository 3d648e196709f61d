"""The nightly work while serving: lookups from 4 client processes during ingest, refresh, train
and promote on the same data dir.

Everything goes through the real commands (`smp ingest/refresh/train/promote/serve` as
subprocesses), the way an operator runs them. Setup (not measured): the earliest ``--initial``
labelled posts are ingested, refreshed and a deliberately small model (40 CatBoost rounds) is
promoted, so the nightly candidate, trained on more posts with the configured recipe, is better
and its promotion can be timed. Then 4 clients look up the setup's posts for ``--quiet`` seconds
(the baseline), and keep looking up while the nightly work runs on ``--added`` more posts.

Prints: requests, non-200 answers by code, connection errors, p50/p99 quiet vs during the
nightly work (and the ratio), and how many seconds after `smp promote` returned the new version
was first served.

    .venv/bin/python benchmarks/nightly_under_load.py                 # 600 + 300 posts
    .venv/bin/python benchmarks/nightly_under_load.py --initial 1600 --added 1600
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _timing import percentile_ms  # noqa: E402

from smp_platform.pipeline.ingest import slice_smp_video  # noqa: E402

BUNDLED_TRAIN = REPO / "data" / "smp-video" / "train"
SMP = [sys.executable, "-m", "smp_platform.cli"]


def run(env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [*SMP, *args], env=env, capture_output=True, text=True, check=False, cwd=REPO
    )
    if done.returncode != 0:
        raise SystemExit(f"smp {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client(url: str, post_ids: list[str], stop: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Look posts up until told to stop; send back (t, status or error, seconds, version)."""
    import httpx

    samples = []
    i = 0
    with httpx.Client(timeout=10) as http:
        while not stop.is_set():
            post_id = post_ids[i % len(post_ids)]
            i += 1
            started = time.perf_counter()
            try:
                response = http.get(f"{url}/v1/posts/{post_id}/popularity")
                status: int | str = response.status_code
                version = response.json().get("model_version") if status == 200 else None
            except httpx.HTTPError as exc:
                status, version = type(exc).__name__, None
            samples.append((time.time(), status, time.perf_counter() - started, version))
    out.put(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--initial", type=int, default=600, help="posts served before the night")
    parser.add_argument("--added", type=int, default=300, help="posts the nightly run adds")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--quiet", type=float, default=20.0, help="seconds of baseline load")
    parser.add_argument("--keep", action="store_true", help="keep the data dir")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="smp-nightly-"))
    env = {**os.environ, "SMP_DATA_DIR": str(root / "data"), "PYTHONPATH": str(REPO)}
    initial = slice_smp_video(BUNDLED_TRAIN, root / "initial", args.initial)
    nightly = slice_smp_video(BUNDLED_TRAIN, root / "nightly", args.initial + args.added)

    print(f"setup: {args.initial} posts -> refresh -> small champion (data dir {root})")
    weak = {**env, "SMP_TRAIN__ITERATIONS": "40"}
    for step in (("ingest", str(initial)), ("refresh",), ("train",), ("promote",)):
        seconds, line = run(weak if step[0] == "train" else env, *step)
        print(f"  {step[0]:8s} {seconds:6.1f} s  {line[:110]}")
    post_ids = [
        json.loads(line)["pid"]
        for line in next(initial.glob("*posts*.jsonl")).read_text().splitlines()
        if line.strip()
    ]

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*SMP, "serve", "--port", str(port), "--poll-seconds", "1"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=open(root / "serve.log", "w"),  # noqa: SIM115
    )
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/v1/posts/{post_ids[0]}/popularity").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the service did not start; see {root / 'serve.log'}")
            time.sleep(0.5)

        stop, out = mp.Event(), mp.Queue()
        clients = [
            mp.Process(target=client, args=(url, post_ids[i :: args.clients], stop, out))
            for i in range(args.clients)
        ]
        for proc in clients:
            proc.start()
        time.sleep(args.quiet)
        night_start = time.time()
        steps = {}
        for step in (("ingest", str(nightly)), ("refresh",), ("train",), ("promote",)):
            seconds, line = run(env, *step)
            steps[step[0]] = (seconds, line)
            print(f"  nightly {step[0]:8s} {seconds:6.1f} s  {line[:110]}")
        promoted_at = time.time()
        time.sleep(5)
        night_end = time.time()
        stop.set()
        samples = [s for _ in clients for s in out.get(timeout=60)]
        for proc in clients:
            proc.join(timeout=10)
    finally:
        server.terminate()
        server.wait(timeout=30)

    quiet = [s for s in samples if s[0] < night_start]
    during = [s for s in samples if night_start <= s[0] <= night_end]
    errors: dict[str, int] = {}
    for _, status, _, _ in samples:
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1
    versions_before = {v for t, st, _, v in quiet if st == 200}
    new_served = [t for t, st, _, v in samples if st == 200 and v not in versions_before]
    promoted = "promoted" in steps["promote"][1] and "not promoted" not in steps["promote"][1]
    lat = lambda rows: [s[2] for s in rows if s[1] == 200]  # noqa: E731
    q99, d99 = percentile_ms(lat(quiet), 0.99), percentile_ms(lat(during), 0.99)
    print()
    print(f"requests: {len(samples):,} ({len(quiet):,} quiet, {len(during):,} during the night)")
    print(f"non-200 answers and connection errors: {errors or 'none'}")
    print(f"quiet   p50 {percentile_ms(lat(quiet), 0.5):7.2f} ms  p99 {q99:7.2f} ms")
    print(f"nightly p50 {percentile_ms(lat(during), 0.5):7.2f} ms  p99 {d99:7.2f} ms")
    print(f"p99 during / quiet: {d99 / q99:.2f}x (target <= 5x)")
    if not promoted:
        print("the nightly candidate was not promoted: no new version to time")
    elif new_served:
        print(f"new version first served {min(new_served) - promoted_at:+.2f} s after promote")
    else:
        print("the new version was not served within 5 s of the promotion")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
