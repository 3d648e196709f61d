"""What the access log costs the one-post lookup: the real app (champion, online store) called
in process through its ASGI stack, no sockets and no client, so the difference is the
middleware's own. Three settings, interleaved in rounds so that a busy machine weighs on each
alike: the ``smp.access`` logger off (the tests' in-thread service), on in text and on in JSON
(both as ``smp serve`` writes them, one record a request, to a file instead of stderr).

    .venv/bin/python benchmarks/access_log.py --data-dir .smp-demo
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _timing import stats
from starlette.responses import Response

from smp_platform.core.config import use_offline_environment
from smp_platform.service.responses import json_response

use_offline_environment()


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _lookup(app: Any, path: str) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(path), receive, send)
    return status


def _handler(log_format: str, path: Path) -> logging.Handler:
    from smp_platform.core.logs import TEXT_FORMAT, JsonFormatter

    handler = logging.FileHandler(path)  # flushed per record, as a StreamHandler on stderr
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    return handler


async def _measure(settings: Any, paths: list[str], rounds: int) -> dict[str, list[float]]:
    from smp_platform.service.app import create_app
    from smp_platform.service.metrics import ServiceMetrics
    from smp_platform.service.middleware import ServiceMiddleware

    app = create_app(settings, poll_seconds=3600)
    access = logging.getLogger("smp.access")
    access.propagate = False
    logs = Path(tempfile.mkdtemp(prefix="smp-access-bench-"))
    handlers = {name: _handler(name, logs / f"{name}.log") for name in ("text", "json")}
    samples: dict[str, list[float]] = {"off": [], "text": [], "json": []}
    async with app.router.lifespan_context(app):
        if await _lookup(app, paths[0]) != 200:
            raise SystemExit(f"{paths[0]} is not answered 200: no champion or no features")
        for path in paths[:200]:  # warm-up
            await _lookup(app, path)
        for _ in range(rounds):
            for name, bucket in samples.items():
                access.handlers = [handlers[name]] if name in handlers else []
                access.setLevel(logging.INFO if name in handlers else logging.WARNING)
                for path in paths:
                    start = time.perf_counter()
                    await _lookup(app, path)
                    bucket.append(time.perf_counter() - start)
        # The middleware alone, around a lookup that answers at once: its own cost, which the
        # lookups above (~0.6 ms, scheduled on a shared machine) blur.
        middleware = ServiceMiddleware(None, metrics=ServiceMetrics(), lookup=_constant_lookup)
        for _ in range(rounds):
            for name in ("off", "text", "json"):
                access.handlers = [handlers[name]] if name in handlers else []
                access.setLevel(logging.INFO if name in handlers else logging.WARNING)
                bucket = samples.setdefault(f"middleware alone, {name}", [])
                for path in paths:
                    start = time.perf_counter()
                    await middleware(_scope(path), _receive, _ignore)
                    bucket.append(time.perf_counter() - start)
    for handler in handlers.values():
        handler.close()
    return samples


def _constant_lookup(post_id: str) -> Response:
    body = {"post_id": post_id, "popularity": 7.93, "model_name": "m", "model_version": "1"}
    return json_response(200, body)


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _ignore(message: dict[str, Any]) -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="a data dir with a @champion")
    parser.add_argument("--requests", type=int, default=500, help="lookups per setting and round")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    from smp_platform.core.config import Settings
    from smp_platform.infra.warehouse import Warehouse

    settings = Settings(data_dir=args.data_dir)
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        post_ids = warehouse.posts_frame()["post_id"].astype(str).tolist()
    paths = [f"/v1/posts/{post_ids[i % len(post_ids)]}/popularity" for i in range(args.requests)]
    samples = asyncio.run(_measure(settings, paths, args.rounds))
    print(
        f"one-post lookup, in process: {len(samples['off']):,} requests per setting, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'':36}{'p50 us':>9}{'p99 us':>9}{'mean us':>9}{'p50 +us':>9}")
    for prefix, label in (("", "the app's ASGI stack"), ("middleware alone, ", "middleware alone")):
        base = stats(samples[f"{prefix}off"])["p50_ms"]
        for name in ("off", "text", "json"):
            s = stats(samples[f"{prefix}{name}"])
            print(
                f"{label + ', log ' + name:36}{s['p50_ms'] * 1e3:>9.1f}{s['p99_ms'] * 1e3:>9.1f}"
                f"{s['mean_ms'] * 1e3:>9.1f}{(s['p50_ms'] - base) * 1e3:>9.1f}"
            )


if __name__ == "__main__":
    main()
