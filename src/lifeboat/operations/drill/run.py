"""Running a drill of one source: the kind's runner under the time limit, its failure turned
into the result's verdict and exit code, the objectives judged."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from lifeboat.core.drill import (
    FAILED,
    MISSED,
    DrillResult,
    DrillTarget,
    seconds_text,
)
from lifeboat.core.events import Event, Events, NoticeRaised
from lifeboat.core.progress import NoticeSink, Severity
from lifeboat.core.units import parse_duration
from lifeboat.errors import Cancelled, ExitCode, LifeboatError, UsageError
from lifeboat.operations.drill.context import Drill, DrillRequest, OverTimeLimit, SpaceRefused
from lifeboat.operations.drill.kinds import drill_by_restore, drill_redis
from lifeboat.operations.drill.postgres import drill_pg_dump, drill_postgres
from lifeboat.repository.repo import Repository

# --- choosing sources --------------------------------------------------------------------


def drillable(configs: Mapping[str, Any], names: Sequence[str] = ()) -> list[str]:
    """The sources a drill covers: ``names``, or every configured source with a ``drill:``
    section or whose kind starts a scratch instance (postgres, pg_dump, redis)."""
    if names:
        unknown = [n for n in names if n not in configs]
        if unknown:
            raise UsageError(
                f"no configured source {', '.join(repr(n) for n in unknown)}",
                hint=f"configured: {', '.join(configs) or 'none'}",
            )
        return list(names)
    return [n for n, c in configs.items() if c.drill is not None or c.type in RUNNERS]


# --- one source ----------------------------------------------------------------------------


def drill_source(
    repo: Repository,
    name: str,
    config: Any,
    request: DrillRequest,
    *,
    events: Events | None = None,
    notify: NoticeSink | None = None,
    clock: Callable[[], datetime] | None = None,
) -> DrillResult:
    """Drill one configured source; a failure is recorded in the result, never raised
    (Ctrl-C and SIGTERM are raised, once the scratch instance is gone). Notices (a damaged
    file named) go to ``notify`` and the errors among them into the result's reasons."""
    from lifeboat.config.model import DrillConfig

    clock = clock or (lambda: datetime.now(UTC))
    outer = events or Events()
    named: list[str] = []

    def sink(event: Event) -> None:
        if isinstance(event, NoticeRaised):
            if event.notice.severity is Severity.ERROR:
                named.append(f"{event.notice.path}: {event.notice.message}")
            if notify is not None:
                notify(event.notice)
        outer.emit(event)

    events = Events(sink, cancel=outer.cancel, operation="drill")
    drill = config.drill or DrillConfig()
    result = DrillResult(source=name, kind=config.type, target="", started=clock())
    result.rto_objective = parse_duration(config.rto).total_seconds() if config.rto else None
    result.rpo_objective = parse_duration(config.rpo).total_seconds() if config.rpo else None
    limit = parse_duration(drill.time_limit).total_seconds()
    clock_start = time.monotonic()
    try:
        target = DrillTarget.parse(request.target or drill.target)
    except ValueError as exc:
        raise UsageError(f"drill target: {exc}") from None
    result.target = target.describe()
    runner = RUNNERS.get(config.type, drill_by_restore)
    try:
        with _time_limit(limit, events) as expired:
            try:
                runner(Drill(repo, name, config, drill, request, target, result, events, clock, clock_start, limit))
            except KeyboardInterrupt:
                if not expired.is_set():
                    raise
                raise OverTimeLimit(f"over the time limit ({seconds_text(limit)})") from None
            except Cancelled:
                if not expired.is_set():
                    raise
                raise OverTimeLimit(f"over the time limit ({seconds_text(limit)})") from None
    except OverTimeLimit as exc:
        result.status = MISSED
        result.reasons.append(exc.message)
    except (Cancelled, KeyboardInterrupt):
        raise
    except LifeboatError as exc:
        if not result.phases:  # it failed while planning
            result.add_phase("plan", time.monotonic() - clock_start)
        result.fail(exc.message)
        result.reasons.extend(named[:NAMED_MAX])
        if len(named) > NAMED_MAX:
            result.reasons.append(f"and {len(named) - NAMED_MAX} more")
        could_not_run = exc.exit_code in _OWN_CODES or isinstance(exc, SpaceRefused)
        result.exit_code = int(exc.exit_code) if could_not_run else int(ExitCode.INTEGRITY)
    result.finished = clock()
    result.judge_objectives(latest=target.kind == "latest")
    if result.status == MISSED and not result.exit_code:
        result.exit_code = int(ExitCode.OBJECTIVE_MISSED)
    elif result.status == FAILED and not result.exit_code:
        result.exit_code = int(ExitCode.INTEGRITY)
    return result


NAMED_MAX = 5  # the damaged files a failed drill's reasons name

# Errors that say the drill could not run here (not that the backup is bad): their own exit code.
_OWN_CODES = {
    ExitCode.NO_REPOSITORY,
    ExitCode.LOCKED,
    ExitCode.WRONG_PASSPHRASE,
    ExitCode.STORAGE,
    ExitCode.MISSING_TOOL,
    ExitCode.USAGE,
}


RUNNERS: dict[str, Callable[[Drill], None]] = {
    "postgres": drill_postgres,
    "redis": drill_redis,
    "pg_dump": drill_pg_dump,
}


# --- the time limit ------------------------------------------------------------------------


class _TimeLimitReached(KeyboardInterrupt):
    """Raised on the main thread when the drill's time limit is reached (unwinds like Ctrl-C)."""


def _reached(signum: int, frame: FrameType | None) -> None:
    raise _TimeLimitReached


@contextlib.contextmanager
def _time_limit(seconds: float, events: Events) -> Iterator[threading.Event]:
    """While the block runs, stop it after ``seconds``: the cancel token is set, and on the main
    thread SIGALRM is delivered to it (this thread only, not the programs it runs) and raises,
    so a wait for a program, a query or a recovery ends too, as Ctrl-C would end it, and
    everything is torn down on the way out. Its own signal, not SIGINT: the command line routes
    SIGINT to the cancel token (app/cli/interrupts.py), which alone would not end a blocked wait.
    The event yielded says the limit was reached."""
    expired = threading.Event()
    done = threading.Event()
    main = threading.main_thread().ident if threading.current_thread() is threading.main_thread() else None
    previous = signal.signal(signal.SIGALRM, _reached) if main is not None else None

    def watch() -> None:
        if done.wait(seconds):
            return
        expired.set()
        events.cancel.cancel("over the time limit")
        if main is not None and not done.is_set():
            signal.pthread_kill(main, signal.SIGALRM)

    watcher = threading.Thread(target=watch, name="drill-time-limit", daemon=True)
    watcher.start()
    try:
        yield expired
    finally:
        done.set()
        if main is not None:
            signal.signal(signal.SIGALRM, _late)  # an alarm sent as the block ended is dropped
        watcher.join(timeout=5)
        if main is not None:
            signal.signal(signal.SIGALRM, previous)


def _late(signum: int, frame: FrameType | None) -> None:
    return
