"""A fault-injecting wrapper, so tests can meet the failures real storage produces.

Faults are drawn from a seeded random generator, so a failing test can be replayed.
Kinds: ``error`` (the request fails before it reaches the storage, like a 5xx),
``reset`` (the request is carried out but its response is lost), ``timeout`` (a slow
request that then fails) — all transient, so retried — and, chosen explicitly, the
permanent ``io`` (an I/O error, like EIO from a failing disk), ``denied`` (permission
refused), ``crash`` (an exception no provider should raise, like a bug in one) and
``cancelled`` (``asyncio.CancelledError``, a ``BaseException`` an async SDK can let out).
``slow`` adds latency to every request. ``down()`` makes every later request fail, like
a backend that stays unreachable. ``objects`` limits the faults to some names.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from lifeboat.errors import StorageError, StoragePermissionDenied, TransientStorageError
from lifeboat.storage.base import Backend, ObjectInfo, ranged_pieces
from lifeboat.storage.wrapper import BackendWrapper

T = TypeVar("T")

FAULT_KINDS = ("error", "reset", "timeout")
PERMANENT_KINDS = ("io", "denied", "crash", "cancelled")


class InjectedCrash(RuntimeError):
    """The ``crash`` fault: an exception outside the storage error classes."""


@dataclass
class FaultPlan:
    """Which requests fail, how, and how slowly the others answer."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    operations: tuple[str, ...] = ("get", "get_range", "put", "delete", "stat", "list")
    objects: tuple[str, ...] = ()  # names (or prefixes ending in /) that may fail; empty: all
    slow: tuple[float, float] = (0.0, 0.0)
    timeout_delay: float = 0.01
    seed: int = 0
    injected: dict[str, int] = field(default_factory=dict)


class FaultyBackend(BackendWrapper):
    """Wraps a backend and makes some of its requests fail."""

    def __init__(
        self, inner: Backend, plan: FaultPlan | None = None, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        super().__init__(inner)
        self.plan = plan or FaultPlan()
        self._rng = random.Random(self.plan.seed)  # noqa: S311 - test fault injection
        self._lock = threading.Lock()
        self._down = False
        self._sleep = sleep

    def down(self) -> None:
        """Every later request fails with a transient error."""
        self._down = True

    def up(self) -> None:
        self._down = False

    def _chosen(self, name: str) -> bool:
        objects = self.plan.objects
        return not objects or any(name == o or (o.endswith("/") and name.startswith(o)) for o in objects)

    def _draw(self, op: str, name: str) -> tuple[str | None, float]:
        with self._lock:
            low, high = self.plan.slow
            delay = self._rng.uniform(low, high) if high > 0 else 0.0
            if self._down:
                return "down", delay
            if op in self.plan.operations and self._chosen(name) and self._rng.random() < self.plan.rate:
                kind = self._rng.choice(self.plan.kinds)
                self.plan.injected[kind] = self.plan.injected.get(kind, 0) + 1
                return kind, delay
            return None, delay

    def _call(self, op: str, name: str, fn: Callable[[], T]) -> T:
        fault, delay = self._draw(op, name)
        if delay:
            self._sleep(delay)
        if fault == "down":
            raise TransientStorageError(f"{op} {name}: storage unreachable (injected)")
        if fault == "error":
            raise TransientStorageError(f"{op} {name}: 503 Service Unavailable (injected)")
        if fault == "timeout":
            self._sleep(self.plan.timeout_delay)
            raise TransientStorageError(f"{op} {name}: request timed out (injected)")
        if fault == "io":
            raise StorageError(f"{op} {name}: Input/output error (injected)")
        if fault == "denied":
            raise StoragePermissionDenied(f"{op} {name}: permission denied (injected)")
        if fault == "crash":
            raise InjectedCrash(f"{op} {name}: unexpected failure (injected)")
        if fault == "cancelled":
            raise asyncio.CancelledError(f"{op} {name}: task cancelled (injected)")
        result = fn()
        if fault == "reset":
            raise TransientStorageError(f"{op} {name}: connection reset after the request (injected)")
        return result

    def get(self, name: str) -> bytes:
        return self._call("get", name, lambda: self._inner.get(name))

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        return self._call("get_range", name, lambda: self._inner.get_range(name, offset, length))

    def get_stream(self, name: str, offset: int, length: int) -> Iterator[bytes]:
        """Ranged reads, each of which may fail as planned (a failure part-way through a stream)."""
        return ranged_pieces(self, name, offset, length)

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        self._call("put", name, lambda: self._inner.put(name, data, if_absent=if_absent))

    def delete(self, name: str) -> None:
        self._call("delete", name, lambda: self._inner.delete(name))

    def stat(self, name: str) -> ObjectInfo:
        return self._call("stat", name, lambda: self._inner.stat(name))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return iter(self._call("list", prefix, lambda: list(self._inner.list(prefix))))
