"""The one event stream of a running operation, and the token that cancels it.

An operation (a backup, a restore, …) reports what it does as typed *events* to a sink it
is given — :class:`PhaseStarted` / :class:`PhaseFinished` around each step, a
:class:`ProgressReport` of its counters at the end of a step, a :class:`NoticeRaised` for
each thing a user must hear about (with its severity), and one :class:`ResultReady` with the
result's JSON form. Front ends subscribe: the CLI draws a progress bar (or plain lines, or
nothing under ``--json``), the daemon will feed metrics, the audit log and the API from the
same events. Nothing here prints or reads the environment.

Counters change thousands of times a second; they are not events. A phase that counts
carries its live :class:`~lifeboat.core.progress.Progress` in :class:`PhaseStarted`, which a
renderer may poll, and the phase's last values follow as a :class:`ProgressReport`.

A :class:`CancelToken` is checked at safe points (between files, between chunks of a stream,
between WAL segments): once cancelled, the next check raises
:class:`~lifeboat.errors.Cancelled` (exit code 130), which leaves nothing committed — the
same as an interrupt.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lifeboat.core.progress import Notice, Progress
from lifeboat.errors import Cancelled


@dataclass(frozen=True)
class PhaseStarted:
    """A step of ``operation`` began (``store``, ``commit``, ``snapshot``, ``wal-wait``…).

    ``label`` says it in words for a progress line; ``progress`` is the live counters of a
    step that counts (read them, never write them).
    """

    operation: str
    phase: str
    label: str = ""
    progress: Progress | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PhaseFinished:
    """A step ended: ``ok`` is False when it raised (the error itself travels as an exception)."""

    operation: str
    phase: str
    seconds: float
    ok: bool = True


@dataclass(frozen=True)
class ProgressCounters:
    """The values of a :class:`Progress` at one moment."""

    files_done: int = 0
    dirs_done: int = 0
    bytes_done: int = 0
    files_total: int = 0
    bytes_total: int = 0
    scan_finished: bool = False
    elapsed: float = 0.0

    @classmethod
    def of(cls, progress: Progress) -> ProgressCounters:
        return cls(
            files_done=progress.files_done,
            dirs_done=progress.dirs_done,
            bytes_done=progress.bytes_done,
            files_total=progress.files_total,
            bytes_total=progress.bytes_total,
            scan_finished=progress.scan_finished,
            elapsed=progress.elapsed(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "files_done": self.files_done,
            "dirs_done": self.dirs_done,
            "bytes_done": self.bytes_done,
            "files_total": self.files_total,
            "bytes_total": self.bytes_total,
            "scan_finished": self.scan_finished,
            "elapsed_seconds": round(self.elapsed, 3),
        }


@dataclass(frozen=True)
class ProgressReport:
    """The counters of ``operation`` at the end of ``phase``."""

    operation: str
    phase: str
    counters: ProgressCounters


@dataclass(frozen=True)
class NoticeRaised:
    """Something about one path a user must hear about; ``notice.severity`` says how bad."""

    operation: str
    notice: Notice


@dataclass(frozen=True)
class StepAnnounced:
    """A step of a long operation (``check``, ``prune``), said in words as it begins:
    ``reading 120 packs``. A front end may show it as a line."""

    operation: str
    message: str


@dataclass(frozen=True)
class ProgramOutput:
    """A piece of what a program the operation runs (a producer, a consumer) wrote on its
    standard error, as it came: a front end passes it on (the CLI: to its own stderr)."""

    operation: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ResultReady:
    """The operation's result, in the JSON form its front ends print or serve."""

    operation: str
    document: dict[str, Any] = field(compare=False)


Event = PhaseStarted | PhaseFinished | ProgressReport | NoticeRaised | StepAnnounced | ProgramOutput | ResultReady
EventSink = Callable[[Event], None]


def discard(event: Event) -> None:
    """A sink that drops every event."""
    return


class CancelToken:
    """Asks a running operation to stop; it stops at its next safe point.

    Thread-safe: a front end (a signal handler, the daemon's API) calls :meth:`cancel`,
    the operation's threads call :meth:`check`.
    """

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._noticed = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "") -> None:
        self.reason = reason or self.reason
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def noticed(self) -> bool:
        """Whether the operation reached a safe point since it was cancelled (it is stopping)."""
        return self._noticed.is_set()

    def check(self) -> None:
        """Raise :class:`~lifeboat.errors.Cancelled` once the operation was asked to stop."""
        if self._cancelled.is_set():
            self._noticed.set()
            why = f" ({self.reason})" if self.reason else ""
            raise Cancelled(f"cancelled{why}")


class Events:
    """What an operation is handed to report and to be stopped: the sink, the cancel token,
    and the counters of its current step. Safe to call from several threads."""

    def __init__(
        self, sink: EventSink | None = None, *, cancel: CancelToken | None = None, operation: str = ""
    ) -> None:
        self.sink: EventSink = sink or discard
        self.cancel = cancel or CancelToken()
        self.operation = operation
        self.progress = Progress()
        self._lock = threading.Lock()

    def for_operation(self, operation: str) -> Events:
        """These events, named for ``operation`` (the sink, token and counters are shared)."""
        named = Events(self.sink, cancel=self.cancel, operation=operation)
        named.progress = self.progress
        return named

    def emit(self, event: Event) -> None:
        with self._lock:
            self.sink(event)

    def check(self) -> None:
        """A safe point: raise :class:`~lifeboat.errors.Cancelled` if the operation was cancelled."""
        self.cancel.check()

    def notice(self, notice: Notice) -> None:
        """A :data:`~lifeboat.core.progress.NoticeSink` that emits :class:`NoticeRaised`."""
        self.emit(NoticeRaised(self.operation, notice))

    def step(self, message: str) -> None:
        """Announce a step in words (:class:`StepAnnounced`); a ``Callable[[str], None]``."""
        self.emit(StepAnnounced(self.operation, message))

    def program_output(self, data: bytes) -> None:
        """A ``StderrSink`` for a program the operation runs: emits :class:`ProgramOutput`."""
        self.emit(ProgramOutput(self.operation, data))

    def result(self, document: dict[str, Any]) -> None:
        self.emit(ResultReady(self.operation, document))

    @contextlib.contextmanager
    def phase(self, phase: str, label: str = "", *, counts: bool = False) -> Iterator[None]:
        """Emit :class:`PhaseStarted` and, when the block ends, :class:`ProgressReport` (if the
        step ``counts``) and :class:`PhaseFinished`. A cancelled operation does not start a step."""
        self.check()
        self.emit(PhaseStarted(self.operation, phase, label, self.progress if counts else None))
        started = time.monotonic()
        ok = False
        try:
            yield
            ok = True
        finally:
            if counts:
                self.emit(ProgressReport(self.operation, phase, ProgressCounters.of(self.progress)))
            self.emit(PhaseFinished(self.operation, phase, time.monotonic() - started, ok))
