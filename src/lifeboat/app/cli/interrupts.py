"""Signals: Ctrl-C and SIGTERM stop a command at a safe point; SIGPIPE while a program runs.

Ctrl-C (SIGINT) and SIGTERM (``kill``, ``systemctl stop``, a container runtime) are routed
by one :class:`Signals` that ``main()`` installs for the whole command. While an operation
runs with a cancel token (:meth:`Signals.cancelling`: a backup, a restore, a check, a prune,
a copy, a drill), the first signal only *cancels the token*: the operation stops at its next
safe point (between files, chunks, segments), its workers and the programs it runs are
stopped, locks released, nothing committed, and the command ends with exit 130 and one line
(docs/cli.md). No exception is thrown into whatever the main thread happens to be doing — an
interrupt landing inside the standard library's thread machinery used to end the process by
SIGINT now and then, or leave a lock held. A second signal is the user insisting: it raises
``KeyboardInterrupt`` (SIGTERM: :class:`Terminated`) at once, as does any signal while no
operation with a token runs. An operation that reaches no safe point within
:data:`STOP_GRACE` seconds (a program it reads from went silent) gets that second signal
from Lifeboat itself, so one ``systemctl stop`` still ends the command; one that did reach
one is left to finish unwinding (a drill tearing down its scratch cluster). ``wal-push``
and ``wal-fetch`` keep PostgreSQL's conventions and are not covered. While another program
runs beside a stream, SIGPIPE is ignored, so a program that stops reading is an error
Lifeboat reports, not a silent death.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

from lifeboat.core.events import CancelToken
from lifeboat.errors import Interrupted

STOP_GRACE = 10.0  # seconds between a first signal and the forced stop (docs/cli.md)
INTERRUPTED = "interrupted"
TERMINATED = "terminated by SIGTERM"


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised where Ctrl-C raises ``KeyboardInterrupt``."""


class Signals:
    """Where SIGINT and SIGTERM go while a command runs (one per process, made by ``main()``)."""

    def __init__(self, *, grace: float = STOP_GRACE) -> None:
        self._tokens: list[CancelToken] = []  # main thread only: the handler runs there too, no lock needed
        self.received: int | None = None
        self._grace = grace
        self._cancelled = threading.Event()  # set by the handler: the watchdog's cue
        self._stopping: list[CancelToken] = []  # the tokens the first signal cancelled
        self._finished = threading.Event()  # the block of installed() ended

    @contextlib.contextmanager
    def installed(self) -> Iterator[Signals]:
        """Route SIGTERM, and SIGINT unless the process was started with it ignored (``nohup``,
        a background job of a non-interactive shell), through this object while the block runs."""
        # The watchdog is started here, never from the handler: a handler runs wherever the main
        # thread was, perhaps inside the thread machinery's own locks.
        watchdog = threading.Thread(target=self._watch, args=(threading.main_thread().ident,), daemon=True)
        watchdog.start()
        previous: dict[int, Any] = {signal.SIGTERM: signal.signal(signal.SIGTERM, self._handle)}
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handle)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._finished.set()
            self._cancelled.set()

    def _watch(self, main: int | None) -> None:
        """After a first signal, give the operation :attr:`_grace` seconds to reach a safe point,
        then send the signal again: the second one stops the command wherever it is."""
        self._cancelled.wait()
        deadline = time.monotonic() + self._grace
        while not self._finished.wait(0.05):
            if any(token.noticed for token in self._stopping):
                return  # stopping at a safe point: let it unwind
            if time.monotonic() >= deadline:
                if main is not None and self.received is not None:
                    signal.pthread_kill(main, self.received)
                return

    @contextlib.contextmanager
    def cancelling(self, token: CancelToken) -> Iterator[CancelToken]:
        """While the block runs, a first signal cancels ``token`` instead of raising (a signal
        that came before the block cancels it at once: the next step of a loop does not start)."""
        self._tokens.append(token)
        if self.received is not None:
            token.cancel(self.reason)
        try:
            yield token
        finally:
            self._tokens.remove(token)

    @property
    def reason(self) -> str:
        return TERMINATED if self.received == signal.SIGTERM else INTERRUPTED

    def interruption(self) -> Interrupted | None:
        """The error to report for the signal received, if one was."""
        return Interrupted(self.reason) if self.received is not None else None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        self.received = signum
        tokens = list(self._tokens)
        if first and tokens:
            for token in tokens:
                token.cancel(self.reason)
            self._stopping = tokens
            self._cancelled.set()
            return
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


@contextlib.contextmanager
def programs_stop_with_us() -> Iterator[None]:
    """While the block runs (on the main thread), SIGPIPE is ignored: a program that stops
    reading our stream is an error we report. (SIGTERM and Ctrl-C are routed by :class:`Signals`.)"""
    previous_pipe = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGPIPE, previous_pipe)
