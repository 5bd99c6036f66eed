"""How the command line shows an operation's events (core/events.py).

One view for every operation: a step that counts draws a live progress bar on a terminal
(not with ``--quiet`` or ``--json``); with ``LIFEBOAT_PROGRESS=lines`` each step's start and
end are plain lines on stderr instead, for logs; otherwise steps print nothing. Notices are
printed as they come (``warning: PATH: …``), a program's standard error is passed on (not
with ``--quiet``), and the result is kept for the command to print — as text, or as the
one JSON document of ``--json``.
"""

from __future__ import annotations

import codecs
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lifeboat.app.cli.progressbar import progress_bar
from lifeboat.core.events import (
    CancelToken,
    Event,
    Events,
    NoticeRaised,
    PhaseFinished,
    PhaseStarted,
    ProgramOutput,
    ProgressReport,
    ResultReady,
    StepAnnounced,
)
from lifeboat.core.units import format_bytes

if TYPE_CHECKING:
    from lifeboat.app.cli.interrupts import Signals
    from lifeboat.app.cli.output import Output

LINES = "lines"  # LIFEBOAT_PROGRESS=lines: plain lines for each step


class EventView:
    """An event sink that renders to the terminal; :attr:`result` holds the last result."""

    def __init__(self, output: Output, *, style: str = "") -> None:
        self.output = output
        self.result: dict[str, Any] | None = None
        self._lines = style == LINES and not output.quiet and not output.json_mode
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._bars: dict[tuple[str, str], contextlib.ExitStack] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, NoticeRaised):
            self.output.notice(event.notice)
        elif isinstance(event, ProgramOutput):
            if not self.output.quiet:
                sys.stderr.write(self._decoder.decode(event.data))
                sys.stderr.flush()
        elif isinstance(event, StepAnnounced):
            self.output.info(event.message)
        elif isinstance(event, PhaseStarted):
            self._started(event)
        elif isinstance(event, ProgressReport):
            if self._lines:
                counters = event.counters
                sys.stderr.write(
                    f"lifeboat: {event.operation}: {event.phase}: {counters.files_done} files, "
                    f"{format_bytes(counters.bytes_done)}\n"
                )
        elif isinstance(event, PhaseFinished):
            self._finished(event)
        elif isinstance(event, ResultReady):
            self.result = event.document

    def _started(self, event: PhaseStarted) -> None:
        if self._lines:
            sys.stderr.write(f"lifeboat: {event.operation}: {event.label or event.phase}\n")
        elif event.progress is not None and self.output.shows_progress:
            stack = contextlib.ExitStack()
            stack.enter_context(progress_bar(event.progress, event.label or event.phase))
            self._bars[(event.operation, event.phase)] = stack

    def _finished(self, event: PhaseFinished) -> None:
        bar = self._bars.pop((event.operation, event.phase), None)
        if bar is not None:
            bar.close()
        if self._lines:
            how = "done" if event.ok else "stopped"
            sys.stderr.write(f"lifeboat: {event.operation}: {event.phase} {how} in {event.seconds:.1f}s\n")

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
        tail = self._decoder.decode(b"", final=True)
        if tail and not self.output.quiet:
            sys.stderr.write(tail)


@contextlib.contextmanager
def viewed(output: Output, *, style: str = "", signals: Signals | None = None) -> Iterator[tuple[Events, EventView]]:
    """Events for one operation, shown by an :class:`EventView` while the block runs; with
    ``signals``, Ctrl-C and SIGTERM cancel the operation at its next safe point."""
    view = EventView(output, style=style)
    token = CancelToken()
    try:
        with signals.cancelling(token) if signals is not None else contextlib.nullcontext(token):
            yield Events(view, cancel=token), view
    finally:
        view.close()
