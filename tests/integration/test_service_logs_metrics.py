"""The service as an operator runs it, on the trained platform: ``X-Request-ID`` and one
``smp.access`` record on every answer, and ``smp serve --workers 2`` (real uvicorn workers)
logging JSON from every process, with /metrics adding up the requests of both workers."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from smp_platform.service.middleware import MAX_BODY_BYTES
from smp_platform.service.routers.posts import LOOKUP_ROUTE
from smp_platform.service.runner import running_service

pytestmark = pytest.mark.integration
FRESH_ID = re.compile(r"[0-9a-f]{32}")


def _post_ids(settings) -> list[str]:  # type: ignore[no-untyped-def]
    from smp_platform.infra.warehouse import Warehouse

    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        return warehouse.posts_frame()["post_id"].astype(str).tolist()


def test_every_answer_has_a_request_id_and_one_access_record(
    platform, caplog: pytest.LogCaptureFixture
) -> None:
    post_id = _post_ids(platform.settings)[0]
    oversized = b'{"post_ids": ["' + b"x" * MAX_BODY_BYTES + b'"]}'
    with (
        caplog.at_level(logging.INFO, logger="smp.access"),
        running_service(platform.settings) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        answers = {
            "given": client.get(
                f"/v1/posts/{post_id}/popularity", headers={"X-Request-ID": "op-1"}
            ),
            "fresh": client.get(f"/v1/posts/{post_id}/popularity"),
            "unknown": client.get("/v1/posts/NO_SUCH_POST/popularity"),
            "invalid": client.get(f"/v1/posts/{'x' * 257}/popularity"),  # the routed way: 422
            "too large": client.post("/v1/posts/popularity:batch", content=oversized),
            "health": client.get("/healthz", headers={"X-Request-ID": "op-health"}),
            "insane": client.get("/healthz", headers={"X-Request-ID": "two words"}),
        }
    # the records are complete once the server has stopped (each follows its response)
    records = {r.request_id: r for r in caplog.records if r.name == "smp.access"}  # type: ignore[attr-defined]
    assert len(records) == len(answers)  # one each, with distinct IDs
    expected = {
        "given": (LOOKUP_ROUTE, 200),
        "fresh": (LOOKUP_ROUTE, 200),
        "unknown": (LOOKUP_ROUTE, 404),
        "invalid": (LOOKUP_ROUTE, 422),
        "too large": ("unmatched", 413),
        "health": ("/healthz", 200),
        "insane": ("/healthz", 200),
    }
    for name, answer in answers.items():
        request_id = answer.headers["x-request-id"]
        record = records[request_id]
        assert (record.route, record.status) == expected[name], name  # type: ignore[attr-defined]
        assert answer.status_code == record.status, name  # type: ignore[attr-defined]
        assert record.method == ("POST" if name == "too large" else "GET"), name  # type: ignore[attr-defined]
        assert 0 < record.latency_ms < 30_000, name  # type: ignore[attr-defined]
        assert post_id not in record.getMessage()  # the template, never the raw path
    assert answers["given"].headers["x-request-id"] == "op-1"
    assert answers["health"].headers["x-request-id"] == "op-health"
    for name in ("fresh", "unknown", "invalid", "too large", "insane"):
        assert FRESH_ID.fullmatch(answers[name].headers["x-request-id"]), name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _lookups_by_worker(metrics_dir: Path) -> dict[str, float]:
    """Each worker's own count of lookups, read from its file as a scrape reads them all."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        # a worker's file exists from its first counter on; until it has served a request it
        # holds no smp_http_requests samples: it counts 0 so far
        families = [
            m for m in MultiProcessCollector.merge([str(path)]) if m.name == "smp_http_requests"
        ]
        pid = path.stem.split("_")[1]
        counts[pid] = sum(
            s.value
            for family in families
            for s in family.samples
            if s.name == "smp_http_requests_total" and s.labels["route"] == LOOKUP_ROUTE
        )
    return counts


def _scraped_lookups(url: str) -> Counter[str]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return Counter(
        {
            s.labels["code"]: int(s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "smp_http_requests_total" and s.labels["route"] == LOOKUP_ROUTE
        }
    )


def _send_lookups(url: str, post_ids: list[str], codes: Counter[int]) -> None:
    """Lookups from 8 threads, each on a fresh connection: the kernel hands connections to
    whichever worker accepts first, so both get some."""
    lock = threading.Lock()

    def client(ids: list[str]) -> None:
        for post_id in ids:
            code = httpx.get(f"{url}/v1/posts/{post_id}/popularity", timeout=30).status_code
            with lock:
                codes[code] += 1

    threads = [threading.Thread(target=client, args=(post_ids[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _start(data_dir: Path, temp: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    # TMPDIR: where serve makes its metrics directory, so that the test can look inside
    env = {**os.environ, "SMP_LOG_FORMAT": "json", "TMPDIR": str(temp)}
    with log.open("wb") as stderr:  # a file, not a pipe: one line per request would fill it
        server = subprocess.Popen(
            [sys.executable, "-m", "smp_platform.cli", "--data-dir", str(data_dir)]
            + ["serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    raise AssertionError(f"smp serve --workers 2 did not become ready: {log.read_text()[-3000:]}")


def test_two_workers_log_json_and_their_metrics_add_up(platform, tmp_path: Path) -> None:
    temp, log = tmp_path / "tmp", tmp_path / "serve.log"
    temp.mkdir()
    post_ids = _post_ids(platform.settings)
    server, url = _start(platform.settings.root, temp, log)
    codes: Counter[int] = Counter()
    try:
        (metrics_dir,) = temp.glob("smp-metrics-*")
        by_worker: dict[str, float] = {}
        for _ in range(25):  # rounds of 40 until both workers have answered some
            _send_lookups(url, post_ids[:40], codes)
            by_worker = _lookups_by_worker(metrics_dir)
            if len(by_worker) == 2 and all(by_worker.values()):
                break
        sent = sum(codes.values())
        scrapes = [_scraped_lookups(url) for _ in range(4)]  # whichever worker answers each
        id_answer = httpx.get(f"{url}/healthz", headers={"X-Request-ID": "op-workers"})
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert codes == {200: sent}
    assert len(by_worker) == 2 and all(by_worker.values()), by_worker  # both answered
    assert sum(by_worker.values()) == sent
    for scraped in scrapes:
        assert scraped == {"200": sent}  # the sum of both workers, from either
    assert id_answer.headers["x-request-id"] == "op-workers"
    assert not metrics_dir.exists()  # removed when the service stopped
    entries = [json.loads(line) for line in log.read_text().splitlines()]  # every line JSON
    access = [e for e in entries if e["logger"] == "smp.access" and e["route"] == LOOKUP_ROUTE]
    assert len(access) == sent
    assert {str(e["pid"]) for e in access} == set(by_worker)  # the same two workers
    assert all(e["status"] == 200 and FRESH_ID.fullmatch(e["request_id"]) for e in access)
    started = [e for e in entries if e["message"] == "Application startup complete."]
    assert {str(e["pid"]) for e in started} == set(by_worker)  # uvicorn's lines, per worker
