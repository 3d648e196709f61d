"""One writer per data dir: a cross-process lock that says who holds it.

Writing commands (ingest, refresh, train, promote, predict) wrap their work in
:func:`writer_lock`; readers (the service) never take it. The lock is an OS file lock
(``filelock``), so a holder that dies, even by SIGKILL, releases it. Who holds it (command, pid,
host, since when) is written next to it, for the message a waiting writer prints.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from smp_platform.core.errors import DataDirBusy

LOCK_FILE = "writer.lock"
HOLDER_FILE = "writer.lock.json"
_POLL_S = 0.5

# Data dirs this process holds, with a depth: a command that calls another writing command
# (the demo: ingest, then refresh) must not wait for itself.
_held: dict[Path, int] = {}


@dataclass(frozen=True)
class Holder:
    command: str
    pid: int
    host: str
    since: str  # ISO 8601, UTC

    def __str__(self) -> str:
        return f"`{self.command}` (pid {self.pid} on {self.host}, since {self.since})"


def current_holder(data_dir: Path) -> Holder | None:
    """Who holds (or last held) the data dir's writer lock, as it recorded itself."""
    try:
        return Holder(**json.loads((Path(data_dir) / HOLDER_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def writer_lock(
    data_dir: Path,
    command: str,
    timeout_s: float,
    *,
    say: Callable[[str], None] = _say,
) -> Iterator[Holder]:
    """Hold the data dir's writer lock for the ``with`` block.

    While another process holds it, say who (once) and wait up to ``timeout_s`` seconds; then
    raise :class:`~smp_platform.core.errors.DataDirBusy` (exit code 2) naming the holder.
    """
    root = Path(data_dir).expanduser().resolve()
    if root in _held:
        _held[root] += 1
        try:
            yield Holder(command, os.getpid(), socket.gethostname(), "")
        finally:
            _held[root] -= 1
        return

    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(root / LOCK_FILE)
    deadline = time.monotonic() + timeout_s
    waiting_for: Holder | None = None
    announced = False
    while True:
        try:
            lock.acquire(timeout=max(0.0, min(_POLL_S, deadline - time.monotonic())))
            break
        except Timeout:
            holder = current_holder(root)
            described = str(holder) if holder else "another command (not yet recorded)"
            if time.monotonic() >= deadline:
                raise DataDirBusy(
                    f"the data dir {root} is in use by {described}; waited {timeout_s:g} s. "
                    "Run this command again when that one has finished, or wait longer "
                    "(lock_timeout_s / SMP_LOCK_TIMEOUT_S)."
                ) from None
            if not announced or holder != waiting_for:
                say(
                    f"waiting for the data dir {root}: in use by {described}; "
                    f"giving up in {max(0.0, deadline - time.monotonic()):.0f} s"
                )
                announced, waiting_for = True, holder

    me = Holder(
        command=command,
        pid=os.getpid(),
        host=socket.gethostname(),
        since=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    _held[root] = 1
    try:
        _write_atomically(root / HOLDER_FILE, json.dumps(asdict(me)))
        yield me
    finally:
        del _held[root]
        try:
            (root / HOLDER_FILE).unlink(missing_ok=True)
        finally:
            lock.release()


def _write_atomically(path: Path, text: str) -> None:
    """A waiting writer reads the file at any moment: it sees the old or the new one, whole."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
