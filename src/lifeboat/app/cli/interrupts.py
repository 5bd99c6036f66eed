"""Signals: SIGTERM stops a command the way Ctrl-C does, and SIGPIPE while a program runs.

Ctrl-C raises ``KeyboardInterrupt`` in the main thread; the command unwinds — workers
stopped, a program Lifeboat runs stopped, locks released, nothing committed — and ends
with exit 130 and one line (docs/cli.md). SIGTERM (``kill``, ``systemctl stop``, a
container runtime) raises :class:`Terminated`, a ``KeyboardInterrupt``, so it unwinds the
same way and ends with the same code, instead of Lifeboat vanishing with its lock left
behind. ``wal-push`` and ``wal-fetch`` keep PostgreSQL's conventions and are not covered.
While another program runs beside a stream, SIGPIPE is ignored, so a program that stops
reading is an error Lifeboat reports, not a silent death.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised where Ctrl-C raises ``KeyboardInterrupt``."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While the block runs (on the main thread), SIGTERM raises :class:`Terminated`."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def programs_stop_with_us() -> Iterator[None]:
    """While the block runs (on the main thread): SIGTERM raises :class:`Terminated`, SIGPIPE is ignored."""
    previous_pipe = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        with sigterm_interrupts():
            yield
    finally:
        signal.signal(signal.SIGPIPE, previous_pipe)
