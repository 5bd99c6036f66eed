"""The daemon's log: one JSON object per line on standard output, for journald (or any
collector): ``{"event": "run finished", "level": "info", "timestamp": "…Z", "job": …}``.

Only what the daemon puts in a record's fields is written — job names, run ids, statuses,
counters, error *messages* (a LifeboatError's message never holds a secret); never a
configuration object, an environment or a repository URL. Secrets stay out by what is
logged, not by filtering patterns out afterwards.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, Any

import structlog

_lock = threading.Lock()


class _LineWriter:
    """Writes each rendered record as one line and flushes it (journald reads lines as they
    come); thread-safe."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        with _lock:
            try:
                self._stream.write(message + "\n")
                self._stream.flush()
            except (OSError, ValueError):  # stdout closed: the daemon goes on without its log
                pass

    debug = info = warning = warn = error = critical = exception = log = msg


def configure(stream: IO[str] | None = None) -> None:
    """Send every structlog logger's records as JSON lines to ``stream`` (standard output)."""
    writer = _LineWriter(stream or sys.stdout)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(sort_keys=False, default=str),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(0),
        logger_factory=lambda *args: writer,
        cache_logger_on_first_use=False,
    )


def logger(**bound: Any) -> Any:
    """A logger with ``bound`` fields on each of its records."""
    return structlog.get_logger().bind(**bound)
