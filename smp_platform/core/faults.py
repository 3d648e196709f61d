"""Test hook: make this process die (SIGKILL) or fail at a named point of the refresh.

``SMP_FAULT_POINT=<name>`` is read only at the named points, never at import. It exists so the
reliability tests (``tests/reliability/``) can kill a real ``smp refresh`` at each boundary of its
work and prove the next run repairs everything; it is not a setting and does nothing when unset.

Points: ``between-views`` (a batch wrote its first view, not the others), ``before-materialize``
(parts written, nothing materialized), ``during-materialize`` (one view materialized, its record
not yet written), and ``batch-error:<group>`` (every batch of that feature group raises instead
of dying).
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "SMP_FAULT_POINT"


class InjectedFault(RuntimeError):
    """The error a ``batch-error`` fault point raises."""


def fault_point(name: str) -> None:
    """Die here with SIGKILL when ``SMP_FAULT_POINT`` names this point (a test hook)."""
    if os.environ.get(ENV_VAR) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def fail_point(name: str) -> None:
    """Raise :class:`InjectedFault` here when ``SMP_FAULT_POINT`` names this point."""
    if os.environ.get(ENV_VAR) == name:
        raise InjectedFault(f"injected fault at {name} ({ENV_VAR})")
