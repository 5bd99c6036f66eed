"""The live events of the runs in progress, for whoever follows them (the API's server-sent
run log, docs/api.md "Jobs and actions").

The recorder publishes each event of a run as it writes it to the catalog, then the run's end.
Each subscriber has a **bounded** queue: when a slow reader lets it fill, its oldest events are
dropped and counted (the reader is told how many) — publishing never waits for a reader, so a
slow client never slows a job. A subscription is removed when its reader closes it (a client
that disconnected) and receives nothing after the run's end. The ends of the last runs are
remembered, so a reader who subscribes just after a run ended hears of its end at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

QUEUE_SIZE = 1000  # events a subscriber may be behind before its oldest ones are dropped
REMEMBERED_ENDS = 256  # ended runs whose end a late subscriber still hears of


@dataclass(frozen=True)
class LiveEvent:
    """One line a run logged: ``seq`` is its place in the catalog (None when the catalog could
    not record it)."""

    run_id: str
    seq: int | None
    at: datetime
    level: str
    message: str


@dataclass(frozen=True)
class RunEnded:
    """A run's end, as the catalog records it."""

    run_id: str
    status: str
    exit_code: int
    error: str | None
    finished: datetime


LiveItem = LiveEvent | RunEnded


class Subscription:
    """One reader's view of one run: :meth:`take` what came since the last call."""

    def __init__(self, hub: LiveRuns, run_id: str, size: int, wake: Callable[[], None] | None) -> None:
        self.run_id = run_id
        self._hub = hub
        self._size = size
        self._wake = wake
        self._items: deque[LiveItem] = deque()
        self._ready = threading.Condition()
        self._dropped = 0
        self.closed = False

    def put(self, item: LiveItem) -> None:
        """Add ``item`` (the publisher's thread): never blocks; a full queue drops its oldest event."""
        with self._ready:
            if isinstance(item, LiveEvent) and len(self._items) >= self._size:
                self._items.popleft()
                self._dropped += 1
            self._items.append(item)
            self._ready.notify_all()
        if self._wake is not None:
            with contextlib.suppress(Exception):  # the reader's loop is gone: it closes the subscription
                self._wake()

    def take(self) -> tuple[list[LiveItem], int]:
        """What came since the last call, and how many events were dropped in between; never blocks."""
        with self._ready:
            items, dropped = list(self._items), self._dropped
            self._items.clear()
            self._dropped = 0
        return items, dropped

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for something to :meth:`take`; True when there is."""
        with self._ready:
            return self._ready.wait_for(lambda: bool(self._items or self._dropped), timeout)

    def close(self) -> None:
        """Stop hearing of the run (the reader went away)."""
        self.closed = True
        self._hub.remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LiveRuns:
    """The publish/subscribe hub of run events (thread-safe)."""

    def __init__(self, *, queue_size: int = QUEUE_SIZE, remember: int = REMEMBERED_ENDS) -> None:
        self._lock = threading.Lock()
        self._queue_size = queue_size
        self._remember = remember
        self._subscribers: dict[str, list[Subscription]] = {}
        self._active: set[str] = set()
        self._ended: OrderedDict[str, RunEnded] = OrderedDict()

    # --- the recorder's side ------------------------------------------------------------------
    def started(self, run_id: str) -> None:
        with self._lock:
            self._active.add(run_id)

    def publish(self, event: LiveEvent) -> None:
        with self._lock:
            readers = list(self._subscribers.get(event.run_id, ()))
        for reader in readers:
            reader.put(event)

    def ended(self, end: RunEnded) -> None:
        with self._lock:
            self._active.discard(end.run_id)
            self._ended[end.run_id] = end
            while len(self._ended) > self._remember:
                self._ended.popitem(last=False)
            readers = self._subscribers.pop(end.run_id, [])
        for reader in readers:
            reader.put(end)

    # --- the readers' side ----------------------------------------------------------------------
    def subscribe(self, run_id: str, *, wake: Callable[[], None] | None = None) -> Subscription:
        """Follow ``run_id`` from now on. ``wake`` (optional) is called, on the publisher's
        thread, after each item is queued: it must not block (``loop.call_soon_threadsafe``)."""
        subscription = Subscription(self, run_id, self._queue_size, wake)
        with self._lock:
            end = self._ended.get(run_id)
            if end is None:
                self._subscribers.setdefault(run_id, []).append(subscription)
        if end is not None:
            subscription.put(end)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        with self._lock:
            readers = self._subscribers.get(subscription.run_id)
            if readers is not None and subscription in readers:
                readers.remove(subscription)
                if not readers:
                    del self._subscribers[subscription.run_id]

    def active(self, run_id: str) -> bool:
        """Whether ``run_id`` runs here now (its events are published as they come)."""
        with self._lock:
            return run_id in self._active

    def subscriber_count(self, run_id: str | None = None) -> int:
        with self._lock:
            if run_id is not None:
                return len(self._subscribers.get(run_id, ()))
            return sum(len(readers) for readers in self._subscribers.values())
