"""The data-dir writer lock across real processes: a second writer waits, or exits 2 naming
the holder; a holder killed with SIGKILL leaves nothing that blocks the next writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from smp_platform.core.locking import current_holder, writer_lock

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# A writing command as the CLI runs one: hold the lock, work, and turn a UserError into its
# message on stderr and its exit code.
WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from smp_platform.core.errors import UserError
    from smp_platform.core.locking import writer_lock

    data_dir, command = sys.argv[1], sys.argv[2]
    timeout_s, work_s = float(sys.argv[3]), float(sys.argv[4])
    try:
        with writer_lock(Path(data_dir), command, timeout_s):
            print("holding", flush=True)
            if work_s < 0:
                sys.stdin.readline()  # hold until told to let go
            else:
                time.sleep(work_s)
    except UserError as error:
        print(error, file=sys.stderr, flush=True)
        sys.exit(error.exit_code)
    """
)


def start_writer(
    data_dir: Path, command: str, timeout_s: float, work_s: float
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data_dir), command, str(timeout_s), str(work_s)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def holding(process: subprocess.Popen[str]) -> subprocess.Popen[str]:
    """Wait until the process says it holds the lock."""
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "holding", process.stderr
    return process


def test_second_writer_with_a_short_timeout_exits_2_naming_the_holder(tmp_path: Path) -> None:
    first = holding(start_writer(tmp_path, "refresh", 5, 60))
    try:
        second = start_writer(tmp_path, "ingest", 1, 0)
        _, stderr = second.communicate(timeout=60)
        assert second.returncode == 2
        assert "waiting for the data dir" in stderr  # it said whom it waited for
        last = stderr.strip().splitlines()[-1]
        assert "in use by `refresh`" in last
        assert f"pid {first.pid}" in last
        assert "since 20" in last  # an ISO date
        holder = current_holder(tmp_path)
        assert holder is not None and holder.pid == first.pid and holder.command == "refresh"
    finally:
        first.kill()
        first.wait()


def test_second_writer_waits_for_the_first_then_runs(tmp_path: Path) -> None:
    first = holding(start_writer(tmp_path, "train", 5, -1))  # holds until let go
    second = start_writer(tmp_path, "promote", 60, 0)
    # Let go only once the second has said whom it waits for: however slowly it starts (a
    # busy machine), it must have met the held lock.
    assert second.stderr is not None and first.stdin is not None
    waiting = ""
    while "in use by" not in waiting:
        line = second.stderr.readline()
        if not line:  # the second ended without ever waiting
            break
        waiting = line
    first.stdin.write("go\n")
    first.stdin.flush()
    first.wait(timeout=60)
    stdout, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr
    assert stdout.strip() == "holding"
    assert "in use by `train`" in waiting
    assert first.returncode == 0
    assert current_holder(tmp_path) is None  # released: nobody is recorded


def test_a_killed_holder_does_not_block_the_next_writer(tmp_path: Path) -> None:
    first = holding(start_writer(tmp_path, "refresh", 5, 60))
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = start_writer(tmp_path, "refresh", 2, 0)
    _, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr
    assert "waiting" not in stderr


def test_nested_writing_commands_in_one_process_do_not_wait_for_themselves(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    with writer_lock(tmp_path, "demo", 1, say=said.append) as outer:
        with writer_lock(tmp_path, "ingest", 1, say=said.append):
            holder = current_holder(tmp_path)
            assert holder is not None and holder.command == "demo"
        assert current_holder(tmp_path) == outer  # the inner exit released nothing
    assert said == []
    assert current_holder(tmp_path) is None
