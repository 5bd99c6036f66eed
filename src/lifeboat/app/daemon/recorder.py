"""Where each run is written: the catalog (start, finish, status, exit code, one-line error,
bytes, the result JSON, its events), the log (one JSON line per start, finish, phase and
notice), the job counters /metrics serves, the hooks the daemon adds (alerts, audit), and the
live events the API streams (live.py).

Nothing here raises into the runner: a catalog that fails is logged and the run goes on.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lifeboat.app.daemon.live import LiveEvent, LiveRuns, RunEnded
from lifeboat.app.daemon.runner import RunOutcome, RunRequest
from lifeboat.core.events import (
    NoticeRaised,
    PhaseFinished,
    PhaseStarted,
    ProgramOutput,
    ProgressReport,
    StepAnnounced,
)

if TYPE_CHECKING:
    from lifeboat.app.observability.metrics import JobStat


@dataclass
class JobCounters:
    """What the daemon counted of one job since it started (for /metrics)."""

    name: str
    kind: str
    target: str
    runs_total: int = 0
    failures_total: int = 0
    last_status: str = ""
    last_run: datetime | None = None  # when the last run started
    last_success: datetime | None = None
    last_duration: float | None = None
    last_bytes_read: int | None = None
    last_bytes_added: int | None = None
    running: bool = False

    def stat(self) -> JobStat:
        """As app/observability/metrics.py's JobStat (counted since the daemon started; the last
        run and success seeded from the catalog)."""
        from lifeboat.app.observability.metrics import JobStat

        return JobStat(
            job=self.name,
            kind=self.kind,
            target=self.target,
            runs_total=self.runs_total,
            failures_total=self.failures_total,
            last_success=self.last_success,
            last_run=self.last_run,
            last_status="running" if self.running else (self.last_status or None),
            last_duration_seconds=self.last_duration,
            bytes_read=self.last_bytes_read,
            bytes_added=self.last_bytes_added,
        )


def event_line(event: object) -> tuple[str, str] | None:
    """(level, message) of an operation's event for the run's log; None for what is not logged
    (the result itself is the run's summary)."""
    if isinstance(event, PhaseStarted):
        return "info", f"{event.operation}: {event.label or event.phase}"
    if isinstance(event, PhaseFinished):
        verdict = "done" if event.ok else "failed"
        return ("info" if event.ok else "error"), f"{event.operation}: {event.phase} {verdict} in {event.seconds:.1f} s"
    if isinstance(event, ProgressReport):
        c = event.counters
        return "info", f"{event.operation}: {event.phase}: {c.files_done} files, {c.bytes_done} bytes"
    if isinstance(event, NoticeRaised):
        notice = event.notice
        return notice.severity.value, f"{notice.path}: {notice.message}" if notice.path else notice.message
    if isinstance(event, StepAnnounced):
        return "info", f"{event.operation}: {event.message}"
    if isinstance(event, ProgramOutput):
        text = event.data.decode("utf-8", "replace").strip()
        return ("info", f"{event.operation}: program: {text[:1000]}") if text else None
    return None


class Recorder:
    """A :class:`~lifeboat.app.daemon.runner.RunRecorder` over the catalog and the log."""

    def __init__(self, catalog: Any, log: Any, *, host: str, clock: Callable[[], datetime]) -> None:
        self._catalog = catalog
        self._log = log
        self._host = host
        self._clock = clock
        self._lock = threading.Lock()
        self.counters: dict[str, JobCounters] = {}
        # Called with each finished run (alerts, audit); each must not raise.
        self.on_finished: list[Callable[[RunOutcome], None]] = []
        # Where each run's events are published as they come (the API's live run log).
        self.live: LiveRuns | None = None

    def _catalog_call(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - the catalog failing never stops a run
            self._log.error("catalog write failed", action=what, error=str(exc).splitlines()[0] if str(exc) else "")
            return None

    def seed(self, jobs: list[Any]) -> None:
        """Start each job's counters from the catalog: its last run and last success on this host."""
        for job in jobs:
            with self._lock:
                counter = self.counters.get(job.name) or JobCounters(job.name, job.kind, job.target)
                self.counters[job.name] = counter
            last = self._newest(job.name, None)
            good = self._newest(job.name, "succeeded")
            with self._lock:
                if last:
                    counter.last_run, counter.last_status = last[0].started, last[0].status
                if good:
                    counter.last_success = good[0].finished
                    counter.last_bytes_read, counter.last_bytes_added = good[0].bytes_read, good[0].bytes_added

    def _newest(self, job: str, status: str | None) -> Any:
        def read() -> Any:
            return self._catalog.runs(job=job, host=self._host, status=status, limit=1)

        return self._catalog_call("runs", read)

    def stats(self) -> list[JobStat]:
        with self._lock:
            return [counter.stat() for counter in self.counters.values()]

    def _counter(self, request: RunRequest) -> JobCounters:
        job = request.job
        counter = self.counters.get(job.name)
        if counter is None:
            counter = self.counters[job.name] = JobCounters(job.name, job.kind, job.target)
        return counter

    def started(self, request: RunRequest, started: datetime) -> str:
        job = request.job
        run = self._catalog_call(
            "start_run",
            lambda: self._catalog.start_run(
                job=job.name,
                kind=job.kind,
                target=job.target,
                trigger=request.trigger,
                attempt=request.attempt,
                started=started,
                run_id=request.run_id,
            ),
        )
        run_id = run.id if run is not None else (request.run_id or uuid.uuid4().hex)
        if self.live is not None:
            self.live.started(str(run_id))
        with self._lock:
            counter = self._counter(request)
            counter.running, counter.last_run = True, started
        self._log.info(
            "run started", job=job.name, run=run_id, trigger=request.trigger, attempt=request.attempt,
            scheduled=request.fire.isoformat() if request.fire else None,
        )  # fmt: skip
        return str(run_id)

    def event(self, run_id: str, request: RunRequest, event: object) -> None:
        line = event_line(event)
        if line is None:
            return
        level, message = line
        at = self._clock()
        seq = self._catalog_call(
            "add_event", lambda: self._catalog.add_event(run_id, at=at, level=level, message=message)
        )
        if self.live is not None:
            self.live.publish(LiveEvent(run_id, seq if isinstance(seq, int) else None, at, level, message))
        if not isinstance(event, ProgramOutput | ProgressReport):
            self._log.info("job event", job=request.job.name, run=run_id, severity=level, message=message)

    def finished(self, outcome: RunOutcome) -> None:
        result = outcome.result
        bytes_read = result.bytes_read if result is not None else None
        bytes_added = result.bytes_added if result is not None else None
        self._catalog_call(
            "finish_run",
            lambda: self._catalog.finish_run(
                outcome.run_id,
                status=outcome.status,
                finished=outcome.finished,
                exit_code=outcome.exit_code,
                error=outcome.error,
                bytes_read=bytes_read,
                bytes_added=bytes_added,
                summary=result.summary if result is not None else None,
            ),
        )
        if self.live is not None:
            end = RunEnded(outcome.run_id, outcome.status, outcome.exit_code, outcome.error, outcome.finished)
            self.live.ended(end)
        with self._lock:
            counter = self._counter(outcome.request)
            counter.running = False
            counter.runs_total += 1
            counter.last_status = outcome.status
            counter.last_duration = outcome.seconds
            if outcome.status == "succeeded":
                counter.last_success = outcome.finished
                counter.last_bytes_read, counter.last_bytes_added = bytes_read, bytes_added
            elif outcome.status != "cancelled":
                counter.failures_total += 1
        log = self._log.info if outcome.status == "succeeded" else self._log.warning
        log(
            "run finished", job=outcome.request.job.name, run=outcome.run_id, status=outcome.status,
            exit_code=outcome.exit_code, duration_seconds=round(outcome.seconds, 3), bytes_read=bytes_read,
            bytes_added=bytes_added, error=outcome.error,
        )  # fmt: skip
        for hook in list(self.on_finished):
            try:
                hook(outcome)
            except Exception as exc:  # noqa: BLE001 - a hook never breaks the record of a run
                self._log.error("run hook failed", job=outcome.request.job.name, error=str(exc))

    def skipped(self, request: RunRequest, reason: str) -> None:
        self._log.info("run skipped", job=request.job.name, trigger=request.trigger, reason=reason)
