"""Logging: JSON lines on stderr, configured once by the CLI.

Events have stable names (``upstream.breaker_open``) and their fields go in ``extra``; this
formatter writes every extra field, so callers must never put secrets there.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["configure_logging"]

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]  # typeshed: StreamHandler[TextIO]
    """Writes to whatever ``sys.stderr`` is at the time (a test runner swaps it)."""

    @property  # a read-only view of sys.stderr
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        return None


def configure_logging(level: str = "INFO") -> None:
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("apscheduler.executors.default", "httpx", "httpx2", "azure", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # "skipped: maximum number of running instances reached" is a job outlasting its interval: by
    # design (max_instances=1, coalesce), and counted in tunewatch_job_runs_total, not worth a line
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
