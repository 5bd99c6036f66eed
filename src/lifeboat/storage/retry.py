"""Retry transient storage failures with exponential backoff and full jitter.

Only :class:`TransientStorageError` is retried; a permanent error (not found, permission
denied, quota, already exists) fails at once. A put-if-absent that is retried after a
transient failure may find its own earlier attempt stored: the wrapper then compares the
stored bytes and treats an identical object as success.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from lifeboat.errors import StorageAlreadyExists, StorageNotFound, TransientStorageError
from lifeboat.storage.base import Backend, ObjectInfo, read_stream
from lifeboat.storage.wrapper import BackendWrapper

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry."""

    attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 15.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**attempt)]."""
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * (2**attempt)))


class RetryingBackend(BackendWrapper):
    """Wraps a backend; same contract, transient failures retried."""

    passes_staging = True  # staging is local-disk only: nothing transient to retry
    passes_listing = True

    def __init__(
        self,
        inner: Backend,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        on_retry: Callable[[str, int, Exception], None] | None = None,
    ) -> None:
        super().__init__(inner)
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._on_retry = on_retry

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except TransientStorageError as exc:
                attempt += 1
                if attempt >= self._policy.attempts:
                    if attempt == 1:
                        raise
                    raise TransientStorageError(f"{exc.message} (tried {attempt} times)", hint=exc.hint) from exc
                if self._on_retry is not None:
                    self._on_retry(what, attempt, exc)
                self._sleep(self._policy.delay(attempt, self._rng))

    def get(self, name: str) -> bytes:
        return self._call(f"get {name}", lambda: self._inner.get(name))

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        return self._call(f"get {name}", lambda: self._inner.get_range(name, offset, length))

    def get_stream(self, name: str, offset: int, length: int) -> Iterator[bytes]:
        """A stream that fails part-way resumes where it stopped, with a new request. The
        retry budget is per stretch without progress: a stream that keeps delivering between
        failures is finished, one that delivers nothing fails as any call does."""
        end = offset + length
        failures = 0
        while offset < end:
            delivered = offset
            try:
                for piece in read_stream(self._inner, name, offset, end - offset):
                    offset += len(piece)
                    yield piece
                return
            except TransientStorageError as exc:
                failures = 1 if offset > delivered else failures + 1
                if failures >= self._policy.attempts:
                    if failures == 1:
                        raise
                    raise TransientStorageError(f"{exc.message} (tried {failures} times)", hint=exc.hint) from exc
                if self._on_retry is not None:
                    self._on_retry(f"get {name}", failures, exc)
                self._sleep(self._policy.delay(failures, self._rng))

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        attempted = False

        def attempt() -> None:
            nonlocal attempted
            try:
                self._inner.put(name, data, if_absent=if_absent)
            except StorageAlreadyExists:
                # An earlier attempt may have landed before its response was lost.
                if attempted and self._inner.get(name) == bytes(data):
                    return
                raise
            finally:
                attempted = True

        self._call(f"put {name}", attempt)

    def delete(self, name: str) -> None:
        attempted = False

        def attempt() -> None:
            nonlocal attempted
            try:
                self._inner.delete(name)
            except StorageNotFound:
                if attempted:  # an earlier attempt removed it before its response was lost
                    return
                raise
            finally:
                attempted = True

        self._call(f"delete {name}", attempt)

    def stat(self, name: str) -> ObjectInfo:
        return self._call(f"stat {name}", lambda: self._inner.stat(name))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # A listing is materialised so a retry restarts it cleanly.
        return iter(self._call(f"list {prefix}", lambda: list(self._inner.list(prefix))))
