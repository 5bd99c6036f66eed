"""Running a call under a deadline, so a hang fails a test instead of stalling the suite."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

import pytest

T = TypeVar("T")


def within(seconds: float, work: Callable[[], T]) -> T:
    """``work()``'s result or exception; a failed test if it takes longer (then it is left
    running on a daemon thread, which the end of the test run does not wait for)."""
    done: Future[T] = Future()

    def run() -> None:
        try:
            done.set_result(work())
        except BaseException as exc:
            done.set_exception(exc)

    threading.Thread(target=run, name="test-deadline", daemon=True).start()
    try:
        return done.result(timeout=seconds)
    except TimeoutError:
        pytest.fail(f"still running after {seconds} s: it hangs", pytrace=False)
