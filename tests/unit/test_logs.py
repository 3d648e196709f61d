"""Logs an operator can search (smp_platform/core/logs.py): one JSON object per line with the
record's fields, and every console handler of the process writing it, Prefect's included."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from smp_platform.core.logs import JsonFormatter


def _lines(records: list[tuple[str, dict[str, object]]], *, fail: bool = False) -> list[str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("smp.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for message, extra in records:
            logger.warning(message, extra=extra)
        if fail:
            try:
                1 / 0  # noqa: B018
            except ZeroDivisionError:
                logger.exception("lookup failed\nsecond line")
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().splitlines()


def test_each_record_is_one_json_object_with_its_fields() -> None:
    lines = _lines(
        [
            ("GET /v1/posts/{post_id}/popularity 200", {"request_id": "abc", "status": 200}),
            ("a message\nacross two lines", {"path": Path("/data/x")}),
        ],
        fail=True,
    )
    assert len(lines) == 3  # a newline in a message or a traceback stays inside its object
    first, second, third = (json.loads(line) for line in lines)
    assert first["level"] == "WARNING" and first["logger"] == "smp.test.json"
    assert first["message"] == "GET /v1/posts/{post_id}/popularity 200"
    assert first["request_id"] == "abc" and first["status"] == 200
    assert first["pid"] == os.getpid()
    when = datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 0
    assert abs((datetime.now(when.tzinfo) - when).total_seconds()) < 60
    assert "exc_info" not in first and "args" not in first and "msg" not in first
    assert second["message"] == "a message\nacross two lines"
    assert second["path"] == "/data/x"  # what JSON cannot hold is logged as its text
    assert third["level"] == "ERROR" and third["message"] == "lookup failed\nsecond line"
    assert "Traceback (most recent call last)" in third["exc_info"]
    assert "ZeroDivisionError: division by zero" in third["exc_info"]


def test_an_extra_cannot_replace_the_standard_fields() -> None:
    (line,) = _lines([("hello", {"level": "forged", "logger": "forged"})])
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "smp.test.json"


def _run(script: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done


def test_json_takes_over_every_console_handler_prefects_included() -> None:
    """The CLI's order: the platform's handler first, then Prefect's own logging setup (at its
    import), then a flow run's call again; every line on stderr is then JSON, once."""
    done = _run(
        "import logging, sys\n"
        "from smp_platform.core.logs import use_log_format\n"
        "own = logging.getLogger('lib.own')\n"
        "own.addHandler(logging.StreamHandler(sys.stderr)); own.propagate = False\n"
        "use_log_format('json')\n"
        "import prefect\n"  # configures its loggers and handlers
        "use_log_format('json'); use_log_format('json')\n"
        "logging.getLogger('prefect').warning('from prefect')\n"
        "logging.getLogger('prefect._internal').error('from prefect internals')\n"
        "logging.getLogger('smp_platform.x').warning('from the platform')\n"
        "own.warning('from a library with its own handler')\n"
        "logging.getLogger('lib').info('below the level: not shown')\n"
        "import warnings; warnings.warn('a notice a library prints', UserWarning)\n"
    )
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(e["logger"], e["message"]) for e in entries[:-1]] == [
        ("prefect", "from prefect"),
        ("prefect._internal", "from prefect internals"),
        ("smp_platform.x", "from the platform"),
        ("lib.own", "from a library with its own handler"),
    ]
    assert entries[-1]["logger"] == "py.warnings"
    assert "UserWarning: a notice a library prints" in entries[-1]["message"]


def test_text_leaves_the_libraries_console_as_it_is() -> None:
    done = _run(
        "import logging, sys\n"
        "from smp_platform.core.logs import use_log_format\n"
        "logging.basicConfig(format='plain %(message)s')\n"
        "use_log_format('text')\n"
        "logging.getLogger('x').warning('hello')\n"
    )
    assert done.stderr.strip() == "plain hello"


def test_the_service_config_routes_uvicorn_and_the_access_log_through_one_handler() -> None:
    done = _run(
        "import logging, logging.config\n"
        "from smp_platform.core.logs import service_log_config\n"
        "logging.config.dictConfig(service_log_config('json'))\n"
        "logging.getLogger('uvicorn.error').info('Started server process')\n"
        "logging.getLogger('smp.access').info('GET /healthz 200', extra={'request_id': 'r1'})\n"
        "logging.getLogger('smp_platform.service.champion').info('serving version 3')\n"
        "logging.getLogger('feast').info('library chatter: not shown')\n"
        "logging.getLogger('feast').warning('library warning')\n"
    )
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert [e["message"] for e in entries] == [
        "Started server process",
        "GET /healthz 200",
        "serving version 3",
        "library warning",
    ]
    assert entries[1]["request_id"] == "r1"
    text = _run(
        "import logging, logging.config\n"
        "from smp_platform.core.logs import service_log_config\n"
        "logging.config.dictConfig(service_log_config('text'))\n"
        "logging.getLogger('smp.access').info('GET /healthz 200')\n"
    )
    assert text.stderr.strip().endswith("INFO smp.access: GET /healthz 200")
