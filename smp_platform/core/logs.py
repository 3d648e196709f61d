"""Logs an operator can search: ``log_format = "json"`` (``SMP_LOG_FORMAT=json``) writes every
record as one JSON object per line on stderr, the fields a log search filters on included.

- :class:`JsonFormatter`: ``time`` (ISO 8601, UTC, ms), ``level``, ``logger``, ``message``,
  ``pid``, then
  the record's own fields (``request_id``, ``route``, ``status``, ``latency_ms`` of the access
  log; Prefect's ``flow_run_id``), and ``exc_info`` as the formatted traceback.
- :func:`use_log_format`: a batch entry point's logging (the CLI, a flow run).
- :func:`service_log_config`: uvicorn's ``log_config``; uvicorn applies it in every worker.

Standard library only: the CLI imports it before any command runs (``smp --help`` is instant).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

# What every LogRecord carries; anything else on a record came in through ``extra=``.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",  # Python 3.12
    "color_message",  # uvicorn's copy of the message with ANSI colours
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Levels of the service's own loggers: the access log and the watcher's "serving version N";
# libraries stay at WARNING, as without any configuration.
SERVICE_LOGGERS = ("smp", "smp_platform", "uvicorn", "uvicorn.error")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a newline in a message or a traceback is
    escaped), ASCII only, so any log shipper splits and parses it."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker of `smp serve --workers N`
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry.setdefault(key, value)  # the four fields above win over an extra
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # default=str: an extra that JSON cannot hold (a Path, a UUID) is logged as its text
        return json.dumps(entry, default=str)


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The platform's stderr handler: its own class, so that configuring again replaces it
    rather than adding a second one (and Prefect's setup sees a user's handler on the root
    logger and leaves it there)."""


def use_log_format(log_format: str) -> None:
    """Logging of an entry point (the CLI, a flow run, a Dask task, a service worker).

    "json": the root logger writes JSON to stderr, and every other handler that writes to a
    console stream (Prefect's console and debug handlers, uvicorn's) is replaced by it, so that
    nothing the process logs stays unstructured; levels are left as they are (library records
    at WARNING, Prefect's at INFO). Handlers that ship records elsewhere (Prefect's API) stay.
    "text": nothing changes; the libraries' own console output (Prefect's) is for a person.
    Calling it again is cheap and changes nothing more.
    """
    if log_format != "json":
        return
    # Warnings a library prints itself (an ibis DeprecationWarning in `smp promote`) become
    # records of "py.warnings", in JSON like the rest (and filtered as the CLI filters them).
    logging.captureWarnings(True)
    root = logging.getLogger()
    ours = next((h for h in root.handlers if isinstance(h, ConsoleHandler)), None)
    if ours is None:
        ours = ConsoleHandler(sys.stderr)
        ours.setFormatter(JsonFormatter())
        root.addHandler(ours)
    loggers = [root] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        consoles = [h for h in logger.handlers if h is not ours and _writes_to_console(h)]
        for handler in consoles:
            logger.removeHandler(handler)
        # a logger that does not pass its records up printed them itself: it keeps printing
        if consoles and logger is not root and not logger.propagate:
            logger.addHandler(ours)


def _writes_to_console(handler: logging.Handler) -> bool:
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    consoles = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    return any(handler.stream is stream for stream in consoles)


def service_log_config(log_format: str) -> dict[str, Any]:
    """uvicorn's ``log_config``: one stderr handler in ``log_format`` on the root logger, which
    uvicorn's loggers, the access log (``smp.access``) and the platform's records all reach.

    A dictConfig rather than a function, because uvicorn applies it again in each worker
    process it spawns (``--workers N``), which then logs the same way as the parent.
    """
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": f"{__name__}.ConsoleHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        # uvicorn's default config gives "uvicorn" a handler of its own; here it propagates
        "loggers": {
            name: {"level": "INFO", "handlers": [], "propagate": True} for name in SERVICE_LOGGERS
        },
    }
