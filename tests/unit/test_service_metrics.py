"""The service's metrics (smp_platform/service/metrics.py): the status gauges, and the sums a
scrape gives when several worker processes share prometheus_client's multiprocess files."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from smp_platform.service.metrics import MULTIPROC_DIR_ENV, ServiceMetrics, shared_metrics_dir


def _samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def _scrape(metrics: ServiceMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return _samples(bytes(metrics.response().body).decode())


def test_update_status_sets_the_gauges_and_none_is_nan() -> None:
    metrics = ServiceMetrics()
    before = _scrape(metrics)
    assert math.isnan(before[("smp_seconds_since_last_refresh", ())])  # not "0 s ago"
    assert math.isnan(before[("smp_last_refresh_drift_share", ())])
    now = datetime.now(UTC)
    metrics.update_status(
        {"post_tabular": 1.0, "post_text": 0.5},
        last_refresh_at=now - timedelta(seconds=90),
        champion_since=(now - timedelta(hours=2)).replace(tzinfo=None),  # naive: UTC
        drift_share=0.125,
    )
    status = _scrape(metrics)
    assert status[("smp_online_coverage_ratio", (("view", "post_tabular"),))] == 1.0
    assert status[("smp_online_coverage_ratio", (("view", "post_text"),))] == 0.5
    assert 90 <= status[("smp_seconds_since_last_refresh", ())] < 100
    assert 7200 <= status[("smp_seconds_since_champion_promoted", ())] < 7210
    assert status[("smp_last_refresh_drift_share", ())] == 0.125
    metrics.update_status({"post_tabular": 0.75}, None, None, None)
    unknown = _scrape(metrics)
    assert unknown[("smp_online_coverage_ratio", (("view", "post_tabular"),))] == 0.75
    assert math.isnan(unknown[("smp_online_coverage_ratio", (("view", "post_text"),))])
    for name in (
        "smp_seconds_since_last_refresh",
        "smp_seconds_since_champion_promoted",
        "smp_last_refresh_drift_share",
    ):
        assert math.isnan(unknown[(name, ())]), name


def test_the_ages_are_as_of_the_scrape_not_of_the_update() -> None:
    metrics = ServiceMetrics()
    metrics.update_status({}, datetime.now(UTC) - timedelta(seconds=10), None, None)
    time.sleep(1.2)
    assert _scrape(metrics)[("smp_seconds_since_last_refresh", ())] >= 11


def test_apps_in_one_process_keep_their_own_counts() -> None:
    first, second = ServiceMetrics(), ServiceMetrics()
    first.observe("/healthz", 200, 0.001)
    first.observe("/healthz", 200, 0.001)
    second.observe("/healthz", 200, 0.001)
    key = ("smp_http_requests_total", (("code", "200"), ("route", "/healthz")))
    assert _scrape(first)[key] == 2 and _scrape(second)[key] == 1


def test_the_shared_directory_is_fresh_and_removed_afterwards() -> None:
    before = os.environ.get(MULTIPROC_DIR_ENV)
    with shared_metrics_dir() as path:
        assert os.environ[MULTIPROC_DIR_ENV] == path
        assert Path(path).is_dir() and not any(Path(path).iterdir())
        (Path(path) / "counter_1.db").write_bytes(b"x")
    assert not Path(path).exists()
    assert os.environ.get(MULTIPROC_DIR_ENV) == before


# A worker process in multiprocess mode, driven line by line from stdin.
WORKER = """
import sys
from datetime import UTC, datetime, timedelta
from smp_platform.service.metrics import ServiceMetrics
metrics = ServiceMetrics()
assert metrics.multiprocess_dir, "not in multiprocess mode"
print("ready", flush=True)
for line in sys.stdin:
    command, *args = line.split()
    if command == "observe":
        for _ in range(int(args[0])):
            metrics.observe("/v1/posts/{post_id}/popularity", 200, 0.001)
    elif command == "version":
        metrics.model_version.set(float(args[0]))
    elif command == "status":
        refreshed = datetime.now(UTC) - timedelta(seconds=float(args[1]))
        metrics.update_status({"post_tabular": float(args[0])}, refreshed, None, float(args[2]))
    elif command == "scrape":
        sys.stdout.write(bytes(metrics.response().body).decode() + "END\\n")
    elif command == "exit":
        break
    print("done", flush=True)
"""


class _Worker:
    def __init__(self, directory: Path) -> None:
        env = {**os.environ, MULTIPROC_DIR_ENV: str(directory)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self._line() == "done", command

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("scrape\n")
        self.proc.stdin.flush()
        lines = []
        while (line := self.proc.stdout.readline()) != "END\n":
            assert line, "the worker went away"
            lines.append(line)
        assert self._line() == "done"
        return _samples("".join(lines))

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def test_workers_add_up_and_a_dead_workers_gauges_leave(tmp_path: Path) -> None:
    route = (("code", "200"), ("route", "/v1/posts/{post_id}/popularity"))
    first, second = _Worker(tmp_path), _Worker(tmp_path)
    try:
        first.send("observe 3")
        second.send("observe 5")
        first.send("version 4")
        second.send("version 3")  # still on the older version
        second.send("status 0.5 30 0.25")  # the first worker has not reported yet
        seen = first.scrape()
        assert seen[("smp_http_requests_total", route)] == 8  # both workers' requests
        assert seen[("smp_http_request_seconds_count", (("route", route[1][1]),))] == 8
        assert seen[("smp_served_model_version", ())] == 3  # the oldest still served
        assert seen[("smp_online_coverage_ratio", (("view", "post_tabular"),))] == 0.5
        assert seen[("smp_last_refresh_drift_share", ())] == 0.25
        assert 30 <= seen[("smp_seconds_since_last_refresh", ())] < 40
        assert not any("pid" in dict(labels) for _, labels in seen)  # one series, not per pid
        first.send("status 0.75 5 0.0")  # the newest word wins
        newer = second.scrape()
        # the answering worker says what it knows as of now: its own, newer than the other's
        assert newer[("smp_online_coverage_ratio", (("view", "post_tabular"),))] == 0.5
        later = first.scrape()
        assert later[("smp_online_coverage_ratio", (("view", "post_tabular"),))] == 0.75
        assert later[("smp_last_refresh_drift_share", ())] == 0.0
        second.kill()  # a crash: no shutdown ran
        after = first.scrape()
        assert after[("smp_http_requests_total", route)] == 8  # its requests still count
        assert after[("smp_served_model_version", ())] == 4  # its old version is gone
    finally:
        for worker in (first, second):
            if worker.proc.poll() is None:
                worker.kill()
