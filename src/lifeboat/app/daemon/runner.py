"""The runner: runs scheduled jobs on a bounded number of worker threads.

Rules (docs/daemon.md "Concurrency"):

- at most ``max_parallel_jobs`` runs at once; waiting runs start highest priority first
  (then first come, first served);
- never two runs of the same job: a run asked for while one of that job runs or waits is
  *coalesced* into it — not queued again — and the skip is logged;
- a drill never takes the last free slot, so WAL-related and backup work always finds one
  (with ``max_parallel_jobs: 1`` a drill starts only while nothing else waits);
- a run with a timeout is cancelled through its operation's :class:`CancelToken` when the
  time is up and ends "timed-out"; :meth:`Runner.cancel_all` (SIGTERM) ends runs "cancelled";
- every exception of a job ends as a failed run with its exit code: a job never kills the
  daemon.

Each run is recorded through a :class:`RunRecorder` (the catalog, the log) and reported to
``on_finished`` (the service schedules retries from there).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from lifeboat.core.events import CancelToken, Events
from lifeboat.errors import Cancelled, ExitCode, LifeboatError

DRILL = "drill"

CANCELLED_BY_STOP = "the daemon is stopping"
CANCELLED_BY_TIMEOUT = "timeout"

STOPPING = "the daemon is stopping"
ALREADY_RUNNING = "the previous run of this job is still running"
ALREADY_WAITING = "a run of this job is already waiting"


class JobSpec(Protocol):
    """What the runner needs of a scheduled job (config/jobs.py ScheduledJob has it)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def priority(self) -> int: ...


@dataclass(frozen=True)
class RunRequest:
    """One run to make: ``job``, why (``trigger``: schedule, retry, catch-up, manual, api), which
    ``attempt`` (1 = first), the scheduled time it answers, and its timeout in seconds. A run
    asked for through the API has its ``run_id`` from the moment it is asked for, and its
    ``actor`` (the API token's name)."""

    job: JobSpec
    trigger: str = "schedule"
    attempt: int = 1
    fire: datetime | None = None
    timeout: float | None = None
    run_id: str | None = None
    actor: str | None = None


@dataclass(frozen=True)
class JobResult:
    """What a job returns: its result JSON, bytes read/added, and an exit code (non-zero for a
    job that finished but did not succeed: a partial backup, a drill over its objective)."""

    summary: dict[str, Any] = field(default_factory=dict)
    bytes_read: int | None = None
    bytes_added: int | None = None
    exit_code: int = 0
    error: str | None = None
    record: Any = field(default=None, compare=False, repr=False)  # the operation's result (a DrillResult)


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended."""

    request: RunRequest
    run_id: str
    status: str  # succeeded | failed | cancelled | timed-out
    exit_code: int
    error: str | None
    started: datetime
    finished: datetime
    result: JobResult | None = None

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()


class RunRecorder(Protocol):
    """Where runs are written (the catalog plus the log); must not raise."""

    def started(self, request: RunRequest, started: datetime) -> str: ...
    def event(self, run_id: str, request: RunRequest, event: object) -> None: ...
    def finished(self, outcome: RunOutcome) -> None: ...
    def skipped(self, request: RunRequest, reason: str) -> None: ...


Execute = Callable[[RunRequest, Events], JobResult]


@dataclass
class _Running:
    request: RunRequest
    run_id: str
    token: CancelToken
    started: datetime
    thread: threading.Thread | None = None
    timer: threading.Timer | None = None


def one_line(text: str) -> str:
    """The first line of ``text`` (an error's message), for the catalog's error column."""
    return (text.strip().splitlines() or [""])[0][:500]


class Runner:
    """Runs :class:`RunRequest` s on worker threads by the rules of the module docstring."""

    def __init__(
        self,
        execute: Execute,
        recorder: RunRecorder,
        *,
        max_parallel: int,
        clock: Callable[[], datetime],
        on_finished: Callable[[RunOutcome], None] | None = None,
    ) -> None:
        self._execute = execute
        self._recorder = recorder
        self._max_parallel = max(1, max_parallel)
        self._clock = clock
        self._on_finished = on_finished or (lambda outcome: None)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: list[tuple[int, int, RunRequest]] = []
        self._order = itertools.count()
        self._running: dict[str, _Running] = {}
        self._stopping = False

    # --- asking for runs ---------------------------------------------------------------------
    def submit(self, request: RunRequest) -> bool:
        """Queue ``request``; False (and a "skipped" record) when its job already runs or waits,
        or the runner is stopping."""
        return self.offer(request) is None

    def offer(self, request: RunRequest) -> str | None:
        """Queue ``request`` and return None; or, when it cannot be queued (its job already runs
        or waits, the runner is stopping), record the skip and return why (one of :data:`BUSY`)."""
        name = request.job.name
        with self._lock:
            if self._stopping:
                reason = STOPPING
            elif name in self._running:
                reason = ALREADY_RUNNING
            elif any(queued.job.name == name for _, _, queued in self._queue):
                reason = ALREADY_WAITING
            else:
                heapq.heappush(self._queue, (-request.job.priority, next(self._order), request))
                self._dispatch()
                return None
        self._recorder.skipped(request, reason)
        return reason

    def set_max_parallel(self, value: int) -> None:
        with self._lock:
            self._max_parallel = max(1, value)
            self._dispatch()

    # --- what is happening -----------------------------------------------------------------
    def running(self) -> list[tuple[str, str]]:
        """(job name, run id) of each run in progress."""
        with self._lock:
            return [(name, run.run_id) for name, run in self._running.items()]

    def queued(self) -> list[str]:
        with self._lock:
            return [request.job.name for _, _, request in sorted(self._queue)]

    def waiting(self) -> list[RunRequest]:
        """The runs waiting for a slot, the next to start first."""
        with self._lock:
            return [request for _, _, request in sorted(self._queue)]

    def busy(self, job: str) -> bool:
        with self._lock:
            return job in self._running or any(r.job.name == job for _, _, r in self._queue)

    # --- stopping ----------------------------------------------------------------------------
    def cancel(self, job: str, reason: str) -> bool:
        with self._lock:
            run = self._running.get(job)
        if run is None:
            return False
        run.token.cancel(reason)
        return True

    def cancel_run(self, run_id: str, reason: str) -> str | None:
        """Cancel the run ``run_id``: "running" (asked to stop at its next safe point), "waiting"
        (taken off the queue, recorded cancelled at once), or None (not running nor waiting here)."""
        with self._lock:
            running = next((run for run in self._running.values() if run.run_id == run_id), None)
            waiting = None
            if running is None:
                entry = next((entry for entry in self._queue if entry[2].run_id == run_id), None)
                if entry is None:
                    return None
                self._queue.remove(entry)
                heapq.heapify(self._queue)
                waiting = entry[2]
        if running is not None:
            running.token.cancel(reason)
            return "running"
        assert waiting is not None
        self._cancel_waiting(waiting, reason)
        return "waiting"

    def _cancel_waiting(self, request: RunRequest, reason: str) -> None:
        """Record a run taken off the queue before it started as cancelled (it has an id its
        asker knows: a run asked for through the API)."""
        now = self._clock()
        recorded = self._recorder.started(request, now)
        outcome = RunOutcome(request, recorded, "cancelled", int(ExitCode.INTERRUPTED), f"cancelled ({reason})",
                             now, now)  # fmt: skip
        self._recorder.finished(outcome)
        with contextlib.suppress(Exception):
            self._on_finished(outcome)

    def stop(self) -> None:
        """Take no more runs, drop the waiting ones, cancel the running ones at a safe point."""
        with self._lock:
            self._stopping = True
            dropped = [request for _, _, request in self._queue]
            self._queue.clear()
            running = list(self._running.values())
        for request in dropped:
            self._recorder.skipped(request, "the daemon is stopping")
            if request.run_id is not None:  # asked for through the API: its asker looks for it
                self._cancel_waiting(request, CANCELLED_BY_STOP)
        for run in running:
            run.token.cancel(CANCELLED_BY_STOP)

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait until no run is in progress (at most ``timeout`` seconds); True when idle."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout)

    def abandon(self, error: str) -> list[RunOutcome]:
        """Record every run still in progress as cancelled with ``error`` (the shutdown deadline
        passed before it reached a safe point); returns what was recorded."""
        with self._lock:
            left = list(self._running.values())
            self._running.clear()
        outcomes = []
        for run in left:
            outcome = RunOutcome(
                run.request, run.run_id, "cancelled", int(ExitCode.INTERRUPTED), error, run.started, self._clock()
            )
            self._recorder.finished(outcome)
            outcomes.append(outcome)
        return outcomes

    # --- inside --------------------------------------------------------------------------------
    def _startable(self) -> tuple[int, int, RunRequest] | None:
        """The queue entry to start now, or None. Caller holds the lock."""
        free = self._max_parallel - len(self._running)
        if free <= 0:
            return None
        ordered = sorted(self._queue)
        others_wait = any(request.job.kind != DRILL for _, _, request in ordered)
        for entry in ordered:
            if entry[2].job.kind != DRILL or free >= 2 or (self._max_parallel == 1 and not others_wait):
                return entry
        return None

    def _dispatch(self) -> None:
        """Start what may start. Caller holds the lock."""
        while not self._stopping:
            entry = self._startable()
            if entry is None:
                return
            self._queue.remove(entry)
            heapq.heapify(self._queue)
            request = entry[2]
            started = self._clock()
            run_id = self._recorder.started(request, started)
            run = _Running(request, run_id, CancelToken(), started)
            self._running[request.job.name] = run
            if request.timeout:
                run.timer = threading.Timer(request.timeout, run.token.cancel, args=(CANCELLED_BY_TIMEOUT,))
                run.timer.daemon = True
                run.timer.start()
            run.thread = threading.Thread(target=self._work, args=(run,), name=f"job {request.job.name}", daemon=True)
            run.thread.start()

    def _work(self, run: _Running) -> None:
        request = run.request

        def sink(event: object) -> None:
            self._recorder.event(run.run_id, request, event)

        events = Events(sink, cancel=run.token, operation=request.job.kind)
        result: JobResult | None = None
        try:
            result = self._execute(request, events)
            status = "succeeded" if result.exit_code == 0 else "failed"
            code, error = result.exit_code, result.error
        except Cancelled as exc:
            timed_out = run.token.reason == CANCELLED_BY_TIMEOUT
            status = "timed-out" if timed_out else "cancelled"
            code = int(ExitCode.INTERRUPTED)
            error = f"timed out after {request.timeout:g} s" if timed_out else one_line(exc.message)
        except LifeboatError as exc:
            status, code, error = "failed", int(exc.exit_code), one_line(exc.message)
        except Exception as exc:  # noqa: BLE001 - a job never kills the daemon
            status, code = "failed", int(ExitCode.ERROR)
            error = one_line(f"internal error: {type(exc).__name__}: {exc}")
        if run.timer is not None:
            run.timer.cancel()
        if status == "failed" and run.token.cancelled:  # cancelled, but it ended by another error
            status = "timed-out" if run.token.reason == CANCELLED_BY_TIMEOUT else "cancelled"
        outcome = RunOutcome(request, run.run_id, status, code, error, run.started, self._clock(), result)
        with self._lock:
            mine = self._running.get(request.job.name) is run
            if mine:
                del self._running[request.job.name]
        try:
            if mine:  # else abandon() recorded it already
                self._recorder.finished(outcome)
                with contextlib.suppress(Exception):  # the service logs its own failures
                    self._on_finished(outcome)
        finally:  # whatever the hooks did, the next run starts and a stop's wait hears of this one
            with self._lock:
                self._dispatch()
                self._idle.notify_all()
