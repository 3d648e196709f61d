"""Latency helpers shared by the benchmarks: one definition of a percentile for every figure."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def percentile_ms(samples: list[float], q: float) -> float:
    """The ``q`` quantile of ``samples`` (seconds) in milliseconds (nearest rank, no interpolation);
    NaN when there are none."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def stats(samples: list[float], wall: float | None = None) -> dict[str, float]:
    """p50/p99/mean in ms and requests per second (over ``wall``, else the samples' sum)."""
    return {
        "p50_ms": percentile_ms(samples, 0.50),
        "p99_ms": percentile_ms(samples, 0.99),
        "mean_ms": statistics.fmean(samples) * 1e3,
        "rps": len(samples) / (wall if wall else sum(samples)),
    }


def time_calls(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Seconds of each of ``repeat`` calls of ``fn``."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def line(name: str, samples: list[float]) -> str:
    """One aligned 'name  p50 .. ms  p99 .. ms' line."""
    p50, p99 = percentile_ms(samples, 0.5), percentile_ms(samples, 0.99)
    return f"{name:<44} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms"
