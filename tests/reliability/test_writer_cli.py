"""One writer per data dir, through the real CLI: while another process holds the writer lock,
a writing command waits, saying who holds it, and exits 2 naming the holder when the wait is
over; it runs once the holder is done. The lock is taken before any heavy work (Prefect,
Feast), so a refused command costs nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

REPO = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from smp_platform.core.locking import writer_lock

    with writer_lock(Path(sys.argv[1]), sys.argv[2], 5):
        print("holding", flush=True)
        if sys.argv[3] == "until-told":
            sys.stdin.readline()  # the test says when to let go
        else:
            time.sleep(float(sys.argv[3]))
    """
)


def hold(data_dir: Path, command: str, seconds: float | str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir), command, str(seconds)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def smp(data_dir: Path, *args: str, lock_timeout_s: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SMP_LOCK_TIMEOUT_S=str(lock_timeout_s))
    return subprocess.run(
        [sys.executable, "-m", "smp_platform.cli", "--data-dir", str(data_dir), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "command",
    [
        ["ingest", "{dataset}"],
        ["refresh"],
        ["train"],
        ["promote"],
        ["predict", "--input", "{dataset}", "--output", "{out}"],
        ["evaluate"],
        ["report"],
        ["demo"],
    ],
    ids=lambda c: c[0],
)
def test_a_second_writer_exits_2_naming_the_holder(tmp_path: Path, command: list[str]) -> None:
    data_dir = tmp_path / "data"
    args = [a.format(dataset=tmp_path / "none", out=tmp_path / "p.csv") for a in command]
    holder = hold(data_dir, "refresh", 120)
    try:
        result = smp(data_dir, *args, lock_timeout_s=1)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "waiting for the data dir" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the data dir") and "in use by `refresh`" in last
    assert f"pid {holder.pid}" in last
    assert "Traceback" not in result.stderr


def test_a_second_writer_waits_for_the_holder_then_runs(tmp_path: Path) -> None:
    from tests.helpers import write_subset

    data_dir = tmp_path / "data"
    dataset = write_subset("train", tmp_path / "in", n=20)
    holder = hold(data_dir, "train", "until-told")
    env = dict(os.environ, SMP_LOCK_TIMEOUT_S="300")
    writer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smp_platform.cli",
            "--data-dir",
            str(data_dir),
            "ingest",
            str(dataset),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Let go only once the writer has said whom it waits for: however slowly it starts (a busy
    # machine), it must have met the held lock.
    assert writer.stderr is not None and holder.stdin is not None
    waiting = ""
    while "in use by" not in waiting:
        line = writer.stderr.readline()
        if not line:  # the writer ended without ever waiting
            break
        waiting = line
    holder.stdin.write("go\n")
    holder.stdin.flush()
    holder.wait(timeout=60)
    stdout, stderr = writer.communicate(timeout=300)
    assert writer.returncode == 0, stderr[-2000:]
    assert "in use by `train`" in waiting  # it said whom it waited for
    assert "20 loaded" in stdout


@pytest.mark.parametrize("flow_name", ["refresh_flow", "train_and_promote_flow", "train_flow"])
def test_the_deployed_flows_take_the_writer_lock(
    tmp_path: Path, flow_name: str, prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment run builds its settings from the worker's environment: with another
    writer holding the data dir it fails naming the holder, and does nothing."""
    import flows.promote
    import flows.refresh
    import flows.train
    from smp_platform.core.errors import DataDirBusy

    flow = {
        "refresh_flow": flows.refresh.refresh_flow,
        "train_and_promote_flow": flows.promote.train_and_promote_flow,
        "train_flow": flows.train.train_flow,
    }[flow_name]
    data_dir = tmp_path / "data"
    monkeypatch.setenv("SMP_LOCK_TIMEOUT_S", "1")
    holder = hold(data_dir, "ingest", 120)
    try:
        with pytest.raises(DataDirBusy, match=f"in use by `ingest` \\(pid {holder.pid}"):
            flow(data_dir=str(data_dir))
    finally:
        holder.kill()
        holder.wait()
    assert not (data_dir / "warehouse.duckdb").exists()  # nothing ran
