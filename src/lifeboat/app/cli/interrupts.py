"""Signals while Lifeboat runs another program beside a stream.

SIGTERM interrupts like Ctrl-C, so the program is stopped and nothing is committed (exit
130) instead of Lifeboat vanishing and leaving it behind; SIGPIPE is ignored, so a program
that stops reading is an error Lifeboat reports, not a silent death.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def programs_stop_with_us() -> Iterator[None]:
    """While the block runs (on the main thread): SIGTERM raises KeyboardInterrupt, SIGPIPE is ignored."""
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    previous_pipe = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGPIPE, previous_pipe)
