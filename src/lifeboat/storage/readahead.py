"""Read-ahead for ranged reads on remote storage.

Restores, ``dump`` and tree walks read many small ranges of a pack, mostly one after the
other; on remote storage every request costs a round trip (and, on cloud storage, money).
This wrapper answers a small ranged read by fetching a whole window from that offset
and serves later reads that fall inside it from memory. Objects are immutable (a name
always holds the same bytes), so a cached window never goes stale; a write or delete of
a name drops its windows anyway. Memory is bounded: least recently used windows are
dropped beyond ``budget`` bytes. Reads of a window's size or more pass straight through.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from lifeboat.storage.base import Backend
from lifeboat.storage.wrapper import BackendWrapper

DEFAULT_WINDOW = 4 * 1024 * 1024
DEFAULT_BUDGET = 64 * 1024 * 1024


class ReadAheadBackend(BackendWrapper):
    """Wraps a backend; same contract, fewer requests for small adjacent ranged reads."""

    passes_staging = True  # a staged object is new: no window can hold it yet
    passes_listing = True

    def __init__(self, inner: Backend, *, window: int = DEFAULT_WINDOW, budget: int = DEFAULT_BUDGET) -> None:
        super().__init__(inner)
        self._window = window
        self._budget = max(budget, window)
        self._cached: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()
        self.requests_saved = 0

    def _lookup(self, name: str, offset: int, length: int) -> bytes | None:
        with self._lock:
            for (cached_name, start), data in reversed(self._cached.items()):
                if cached_name != name or offset < start:
                    continue
                end = start + len(data)
                # A window shorter than asked for ends where the object ends.
                if offset + length <= end or len(data) < self._window:
                    self._cached.move_to_end((cached_name, start))
                    self.requests_saved += 1
                    return data[offset - start : offset - start + length]
        return None

    def _remember(self, name: str, start: int, data: bytes) -> None:
        with self._lock:
            key = (name, start)
            if key in self._cached:
                return
            self._cached[key] = data
            self._used += len(data)
            while self._used > self._budget and self._cached:
                _, dropped = self._cached.popitem(last=False)
                self._used -= len(dropped)

    def _forget(self, name: str) -> None:
        with self._lock:
            for key in [k for k in self._cached if k[0] == name]:
                self._used -= len(self._cached.pop(key))

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if length <= 0 or length >= self._window or offset < 0:
            return self._inner.get_range(name, offset, length)
        hit = self._lookup(name, offset, length)
        if hit is not None:
            return hit
        data = self._inner.get_range(name, offset, self._window)
        self._remember(name, offset, data)
        return data[:length]

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        self._forget(name)
        self._inner.put(name, data, if_absent=if_absent)

    def delete(self, name: str) -> None:
        self._forget(name)
        self._inner.delete(name)

    def close(self) -> None:
        with self._lock:
            self._cached.clear()
            self._used = 0
        self._inner.close()
