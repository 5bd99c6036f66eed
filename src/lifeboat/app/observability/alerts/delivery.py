"""Delivery: one background thread and one bounded queue per channel, so a receiver that is
down delays only its own messages and never the caller. Each message is tried ``attempts``
times, waiting ``retry_delay``, then twice that, … between attempts; a message still not
delivered is given up with one log line. The channel's rate limit is applied here, and the
"n alerts suppressed" message sent when its window ends (or at close)."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from lifeboat.app.observability.alerts.channel import DeliveryFailed
from lifeboat.app.observability.alerts.channels import ConfiguredChannel
from lifeboat.app.observability.alerts.message import Message, suppressed_message
from lifeboat.app.observability.alerts.ratelimit import RateWindow

QUEUE_SIZE = 256  # messages waiting per channel; beyond it new ones are dropped (and logged)
_STOP = object()


def never_raising(log: Callable[[str], None]) -> Callable[[str], None]:
    """``log`` that swallows its own failure (a closed or full stderr, a broken journal socket):
    a line that cannot be written is lost, never the delivery thread or the caller with it."""

    def write(line: str) -> None:
        with contextlib.suppress(Exception):
            log(line)

    return write


@dataclass(frozen=True)
class DeliveryPolicy:
    attempts: int = 3
    retry_delay: float = 10.0  # seconds before the second attempt; doubled before each next one
    limit: int = 20  # messages per channel per period
    period: float = 3600.0
    dashboard_url: str | None = None
    host: str | None = None
    tick: float = 1.0  # how often an idle worker looks whether its rate-limit window ended


class ChannelWorker:
    """Delivers one channel's messages in order, in its own daemon thread."""

    def __init__(
        self,
        configured: ConfiguredChannel,
        policy: DeliveryPolicy,
        *,
        clock: Callable[[], datetime],
        log: Callable[[str], None],
    ) -> None:
        from datetime import timedelta

        self.configured = configured
        self._policy = policy
        self._clock = clock
        self._log = never_raising(log)
        self._queue: queue.Queue[object] = queue.Queue(QUEUE_SIZE)
        self._window = RateWindow(policy.limit, timedelta(seconds=policy.period))
        self._stopping = threading.Event()  # stop() was called: leave once the queue is empty
        self._abandon = threading.Event()  # close's deadline passed: no more waiting to retry
        self._closed = False
        self.delivered = 0  # counters, for tests and the daemon's curiosity
        self.given_up = 0
        self._thread = threading.Thread(target=self._run, name=f"alerts-{configured.name}", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self.configured.name

    def _label(self) -> str:
        return f"alert channel {self.name!r} ({self.configured.channel.kind})"

    def submit(self, message: Message) -> None:
        """Queue ``message`` if the channel wants it; never blocks."""
        if self._closed or not self.configured.filter.wants(message):
            return
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self._log(
                f"{self._label()}: {QUEUE_SIZE} messages wait already; dropped: {message.headline}: {message.title}"
            )

    def stop(self) -> None:
        """Take no more messages; the worker delivers what is queued, then leaves. Never blocks."""
        self._closed = True
        self._stopping.set()
        with contextlib.suppress(queue.Full):  # a full queue: the worker sees _stopping once it is empty
            self._queue.put_nowait(_STOP)

    def join(self, until: float) -> bool:
        """Wait until the worker left or ``until`` (``time.monotonic()``) passed; True when it left."""
        self._thread.join(max(0.0, until - time.monotonic()))
        return not self._thread.is_alive()

    def abandon(self) -> None:
        """Stop waiting to retry: the worker leaves after the message in hand (logged)."""
        self._stopping.set()
        self._abandon.set()
        waiting = sum(isinstance(item, Message) for item in list(self._queue.queue))
        self._log(f"{self._label()}: closing: the message being sent and {waiting} waiting may not be delivered")

    # --- the worker thread ------------------------------------------------------------------
    def _run(self) -> None:
        while not self._abandon.is_set():
            try:
                item = self._queue.get(timeout=self._policy.tick)
            except queue.Empty:
                item = _STOP if self._stopping.is_set() else None
            try:
                self._summarise(force=item is _STOP)
                if item is _STOP:
                    return
                if isinstance(item, Message) and self._window.admit(self._clock()):
                    self._deliver(item)
            except Exception as exc:  # noqa: BLE001 - a bug here must not end the channel's deliveries
                self._log(f"{self._label()}: internal error: {type(exc).__name__}")

    def _summarise(self, *, force: bool) -> None:
        count = self._window.ended(self._clock(), force=force)
        if count:
            message = suppressed_message(count, self._policy.period, self._clock(), self._policy.dashboard_url)
            self._deliver(replace(message, host=self._policy.host))

    def _deliver(self, message: Message) -> None:
        attempts = self._policy.attempts
        for attempt in range(1, attempts + 1):
            try:
                self.configured.channel.send(message)
            except Exception as exc:  # noqa: BLE001 - whatever a channel raised is a failed attempt
                reason = str(exc) if isinstance(exc, DeliveryFailed) else f"{type(exc).__name__} (not shown)"
                if attempt == attempts:
                    self.given_up += 1
                    self._log(f"{self._label()}: gave up after {attempts} attempts: {reason}; lost: {message.subject}")
                    return
                delay = self._policy.retry_delay * 2 ** (attempt - 1)
                self._log(f"{self._label()}: attempt {attempt} of {attempts} failed: {reason}; next in {delay:g}s")
                if self._abandon.wait(delay):
                    self.given_up += 1
                    self._log(f"{self._label()}: shutting down; not delivered: {message.subject}")
                    return
            else:
                self.delivered += 1
                if attempt > 1:
                    self._log(f"{self._label()}: delivered at attempt {attempt}: {message.subject}")
                return
