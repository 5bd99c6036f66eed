"""The runner's rules (app/daemon/runner.py): priority order, no two runs of one job, a drill
never takes the last free slot, timeouts and cancellation through the CancelToken, every
exception a failed run. Jobs block on events the test releases; the clock is a fake one."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.app.daemon.runner import JobResult, Runner, RunOutcome, RunRequest
from lifeboat.core.events import Events
from lifeboat.errors import ExitCode, SourceError

WAIT = 30.0  # seconds a condition may take on a busy machine; never reached when all is well


@dataclass(frozen=True)
class Job:
    name: str
    kind: str
    priority: int
    target: str = "t"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.now += timedelta(seconds=1)
            return self.now


@dataclass
class Book:
    """A RunRecorder that remembers everything."""

    started: list[str] = field(default_factory=list)
    finished: list[RunOutcome] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def started_(self, request: RunRequest, started: datetime) -> str:
        with self.changed:
            self.started.append(request.job.name)
            self.changed.notify_all()
            return f"run-{len(self.started)}"

    def event(self, run_id: str, request: RunRequest, event: object) -> None:
        return

    def finished_(self, outcome: RunOutcome) -> None:
        with self.changed:
            self.finished.append(outcome)
            self.changed.notify_all()

    def skipped_(self, request: RunRequest, reason: str) -> None:
        with self.changed:
            self.skipped.append((request.job.name, reason))
            self.changed.notify_all()

    def wait(self, predicate: object) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, WAIT)  # type: ignore[arg-type]


class Recorder:
    def __init__(self, book: Book) -> None:
        self.started = book.started_
        self.event = book.event
        self.finished = book.finished_
        self.skipped = book.skipped_


class Gates:
    """Each job waits for its gate; the test opens them."""

    def __init__(self) -> None:
        self.gates: dict[str, threading.Event] = {}
        self.behaviour: dict[str, object] = {}

    def gate(self, name: str) -> threading.Event:
        return self.gates.setdefault(name, threading.Event())

    def execute(self, request: RunRequest, events: Events) -> JobResult:
        gate = self.gate(request.job.name)
        while not gate.wait(0.05):  # a job at work reaches safe points
            events.check()
        events.check()
        action = self.behaviour.get(request.job.name)
        if isinstance(action, BaseException):
            raise action
        return JobResult(summary={"job": request.job.name}, bytes_read=10, bytes_added=5)


def runner(book: Book, gates: Gates, parallel: int) -> Runner:
    return Runner(gates.execute, Recorder(book), max_parallel=parallel, clock=FakeClock())  # type: ignore[arg-type]


def test_waiting_runs_start_by_priority_then_in_order() -> None:
    book, gates = Book(), Gates()
    run = runner(book, gates, 1)
    run.submit(RunRequest(Job("check:main", "check", 25)))
    book.wait(lambda: book.started == ["check:main"])
    for job in (Job("verify:db", "verify", 20), Job("backup:db", "backup", 60), Job("copy:off", "copy", 30),
                Job("backup:files", "backup", 50)):  # fmt: skip
        assert run.submit(RunRequest(job))
    assert run.queued() == ["backup:db", "backup:files", "copy:off", "verify:db"]
    for name in ("check:main", "backup:db", "backup:files", "copy:off", "verify:db"):
        gates.gate(name).set()
    book.wait(lambda: len(book.finished) == 5)
    assert book.started == ["check:main", "backup:db", "backup:files", "copy:off", "verify:db"]
    assert all(outcome.status == "succeeded" for outcome in book.finished)


def test_a_job_never_runs_twice_at_once_a_second_run_is_coalesced() -> None:
    book, gates = Book(), Gates()
    run = runner(book, gates, 2)
    backup = Job("backup:db", "backup", 60)
    assert run.submit(RunRequest(backup))
    book.wait(lambda: book.started == ["backup:db"])
    assert not run.submit(RunRequest(backup, trigger="schedule"))
    assert book.skipped == [("backup:db", "the previous run of this job is still running")]
    assert run.running() == [("backup:db", "run-1")]
    gates.gate("backup:db").set()
    book.wait(lambda: len(book.finished) == 1)
    assert run.wait_idle(WAIT)
    assert book.started == ["backup:db"]  # the skipped run was not queued behind the first


def test_a_drill_never_takes_the_last_free_slot() -> None:
    book, gates = Book(), Gates()
    run = runner(book, gates, 2)
    run.submit(RunRequest(Job("verify:db", "verify", 20)))
    book.wait(lambda: book.started == ["verify:db"])
    run.submit(RunRequest(Job("drill:db", "drill", 10)))
    assert run.queued() == ["drill:db"]  # one slot is free, but it is the last one
    run.submit(RunRequest(Job("backup:db", "backup", 60)))
    book.wait(lambda: book.started == ["verify:db", "backup:db"])  # WAL-related work found its slot
    gates.gate("verify:db").set()
    gates.gate("backup:db").set()
    book.wait(lambda: "drill:db" in book.started)  # both slots free: now the drill may run
    gates.gate("drill:db").set()
    book.wait(lambda: len(book.finished) == 3)


def test_with_one_slot_a_drill_runs_only_when_nothing_else_waits() -> None:
    book, gates = Book(), Gates()
    run = runner(book, gates, 1)
    run.submit(RunRequest(Job("drill:db", "drill", 10)))
    book.wait(lambda: book.started == ["drill:db"])
    gates.gate("drill:db").set()
    book.wait(lambda: len(book.finished) == 1)


def test_a_timeout_cancels_the_run_through_its_token() -> None:
    book, gates = Book(), Gates()
    run = runner(book, gates, 2)
    run.submit(RunRequest(Job("backup:db", "backup", 60), timeout=0.2))  # its gate never opens
    book.wait(lambda: len(book.finished) == 1)
    outcome = book.finished[0]
    assert (outcome.status, outcome.exit_code) == ("timed-out", int(ExitCode.INTERRUPTED))
    assert outcome.error == "timed out after 0.2 s"


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (SourceError("/srv/data does not exist"), int(ExitCode.SOURCE_FAILED), "/srv/data does not exist"),
        (
            ZeroDivisionError("division by zero"),
            int(ExitCode.ERROR),
            "internal error: ZeroDivisionError: division by zero",
        ),
    ],
)
def test_every_exception_ends_as_a_failed_run_and_the_runner_goes_on(error: Exception, code: int, message: str) -> None:
    book, gates = Book(), Gates()
    run = runner(book, gates, 1)
    gates.behaviour["backup:db"] = error
    gates.gate("backup:db").set()
    run.submit(RunRequest(Job("backup:db", "backup", 60)))
    book.wait(lambda: len(book.finished) == 1)
    assert (book.finished[0].status, book.finished[0].exit_code, book.finished[0].error) == ("failed", code, message)
    gates.gate("check:main").set()
    run.submit(RunRequest(Job("check:main", "check", 25)))
    book.wait(lambda: len(book.finished) == 2)
    assert book.finished[1].status == "succeeded"


def test_stop_cancels_running_runs_and_drops_waiting_ones() -> None:
    book, gates = Book(), Gates()
    run = runner(book, gates, 1)
    run.submit(RunRequest(Job("backup:db", "backup", 60)))
    book.wait(lambda: book.started == ["backup:db"])
    run.submit(RunRequest(Job("verify:db", "verify", 20)))
    run.stop()
    assert run.wait_idle(WAIT)
    assert [(o.request.job.name, o.status) for o in book.finished] == [("backup:db", "cancelled")]
    assert ("verify:db", "the daemon is stopping") in book.skipped
    assert not run.submit(RunRequest(Job("check:main", "check", 25)))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the hook's own traceback
def test_a_hook_that_fails_when_a_run_ends_does_not_stall_the_queue() -> None:
    """The catalog write or an audit anchor after a run may raise: the next waiting run still
    starts, and a stop's wait still hears that the runner is idle."""
    book, gates = Book(), Gates()
    recorder = Recorder(book)
    failing_once = [True]

    def finished(outcome: RunOutcome) -> None:
        book.finished_(outcome)
        if failing_once:
            failing_once.clear()
            raise OSError("the catalog went away")

    recorder.finished = finished
    run = Runner(gates.execute, recorder, max_parallel=1, clock=FakeClock())  # type: ignore[arg-type]
    run.submit(RunRequest(Job("backup:db", "backup", 60)))
    book.wait(lambda: book.started == ["backup:db"])
    run.submit(RunRequest(Job("verify:db", "verify", 20)))
    gates.gate("backup:db").set()
    book.wait(lambda: book.started == ["backup:db", "verify:db"])
    gates.gate("verify:db").set()
    assert run.wait_idle(WAIT)
