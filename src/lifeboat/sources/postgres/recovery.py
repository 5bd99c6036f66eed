"""Starting a restored cluster and watching its recovery until it is promoted.

Progress is read from the data directory, so no connection (and no password) is
needed: recovery has ended when PostgreSQL removed ``recovery.signal`` and
``postmaster.pid`` says the server is ready. A server that dies on the way (a recovery
target not reached, a gap in the archive, a damaged segment) is reported with the
last lines of its log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lifeboat.errors import PostgresError, RecoveryFailed
from lifeboat.sources.postgres.pgdata import read_postmaster_pid, server_running
from lifeboat.sources.postgres.recoveryconf import SIGNAL
from lifeboat.sources.tools.pg import PgCtl

LOG_NAME = "lifeboat-recovery.log"
READY_LINE = "database system is ready to accept connections"
_TIMELINE_RE = re.compile(r"selected new timeline ID: (\d+)")
_STOP_RE = re.compile(r"recovery stopping (?:before|after) .*|recovery stopping at .*")


@dataclass(frozen=True)
class RecoveryOutcome:
    """How a started restore ended."""

    state: str  # promoted | paused | shut down
    seconds: float
    timeline: int | None
    stop: str  # PostgreSQL's "recovery stopping ..." line, if any
    log_file: str
    port: int | None


def log_tail(path: Path, lines: int = 12) -> list[str]:
    text = _read(path)
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _failure(log: Path, what: str) -> RecoveryFailed:
    tail = log_tail(log, 40)
    ours = [line.strip() for line in tail if line.startswith("lifeboat: ")][-2:]
    server = [line for line in tail if "FATAL:" in line or "PANIC:" in line][-2:]
    important = [*ours, *server] or tail[-3:]
    return RecoveryFailed(f"{what}: " + " | ".join(important), hint=f"the whole log is {log}")


def start_and_wait(
    data_dir: str,
    *,
    port: int | None,
    action: str = "promote",
    timeout: float = 3600.0,
    major: str | None = None,
    poll: float = 0.2,
    monotonic: Callable[[], float] = time.monotonic,
) -> RecoveryOutcome:
    """Start the restored cluster and wait until recovery has ended (promoted, paused or shut down)."""
    root = Path(data_dir)
    log = root / LOG_NAME
    started = monotonic()
    ctl = PgCtl(major)
    try:
        ctl.start(data_dir, log_file=str(log), port=port, wait=False)
    except PostgresError as exc:
        failure = _failure(log, "the restored cluster did not start")
        if not log_tail(log):
            failure = RecoveryFailed(f"the restored cluster did not start: {exc.message}", hint=exc.hint)
        raise failure from None
    signal = root / SIGNAL
    seen_running = False
    ended_at: float | None = None
    already = _read(log).count(READY_LINE)
    while True:
        elapsed = monotonic() - started
        running = server_running(data_dir)
        text = _read(log)
        if running is not None:
            seen_running = True
        if not signal.exists() and running is not None and running.status == "ready":
            # recovery.signal goes before writes are allowed: wait for the postmaster's
            # "ready to accept connections" (read-write), or a few seconds if logs go elsewhere.
            ended_at = ended_at if ended_at is not None else elapsed
            if text.count(READY_LINE) > already or elapsed - ended_at > 5.0:
                return RecoveryOutcome("promoted", elapsed, _timeline(text), _stop_line(text), str(log), running.port)
        if action == "pause" and running is not None and "pausing at the end of recovery" in text:
            return RecoveryOutcome("paused", elapsed, None, _stop_line(text), str(log), running.port)
        if running is None and (seen_running or elapsed > 5):
            if action == "shutdown" and "shutting down" in text and "FATAL" not in text:
                return RecoveryOutcome("shut down", elapsed, None, _stop_line(text), str(log), port)
            raise _failure(log, "recovery failed and the restored cluster stopped")
        if elapsed > timeout:
            pid = read_postmaster_pid(data_dir)
            raise RecoveryFailed(
                f"recovery did not finish within {timeout:.0f}s (server pid {pid.pid if pid else '?'} still running)",
                hint=f"follow {log}; the server keeps recovering",
            )
        time.sleep(poll)


def _read(path: Path) -> str:
    """The log ``pg_ctl -l`` wrote, followed by the logging collector's current file, if any."""
    parts = []
    for candidate in (path, _collector_log(path.parent)):
        if candidate is None:
            continue
        try:
            parts.append(candidate.read_text(errors="replace"))
        except OSError:
            continue
    return "\n".join(parts)


def _collector_log(data_dir: Path) -> Path | None:
    try:
        lines = (data_dir / "current_logfiles").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        kind, _, name = line.partition(" ")
        if kind == "stderr" and name:
            path = Path(name)
            return path if path.is_absolute() else data_dir / path
    return None


def _timeline(text: str) -> int | None:
    found = _TIMELINE_RE.findall(text)
    return int(found[-1]) if found else None


def _stop_line(text: str) -> str:
    found = _STOP_RE.findall(text)
    return found[-1].strip() if found else ""
