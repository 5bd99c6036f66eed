"""An in-memory backend for unit tests: the whole contract, no durability."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping

from lifeboat.errors import StorageAlreadyExists, StorageNotFound
from lifeboat.storage.base import ObjectInfo, check_name
from lifeboat.storage.url import Options, StorageUrl


class MemoryBackend:
    """Objects in a dict, guarded by a lock; ``clock`` sets the reported mtimes."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._objects: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    @property
    def location(self) -> str:
        return f"memory:{id(self):x}"

    def get(self, name: str) -> bytes:
        with self._lock:
            try:
                return self._objects[check_name(name)][0]
            except KeyError:
                raise StorageNotFound(f"{name}: no such object") from None

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        return self.get(name)[offset : offset + length]

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        check_name(name)
        with self._lock:
            if if_absent and name in self._objects:
                raise StorageAlreadyExists(f"{name}: object already exists")
            self._objects[name] = (bytes(data), self._clock())

    def delete(self, name: str) -> None:
        with self._lock:
            if self._objects.pop(check_name(name), None) is None:
                raise StorageNotFound(f"{name}: no such object")

    def stat(self, name: str) -> ObjectInfo:
        with self._lock:
            try:
                data, mtime = self._objects[check_name(name)]
            except KeyError:
                raise StorageNotFound(f"{name}: no such object") from None
        return ObjectInfo(name, len(data), mtime)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            items = [
                ObjectInfo(name, len(data), mtime)
                for name, (data, mtime) in self._objects.items()
                if name.startswith(prefix)
            ]
        yield from sorted(items, key=lambda info: info.name)

    def close(self) -> None:
        return None

    # test helpers ---------------------------------------------------------------------
    def replace_raw(self, name: str, data: bytes) -> None:
        """Overwrite an object in place, bypassing the contract (to simulate damage)."""
        with self._lock:
            _, mtime = self._objects[name]
            self._objects[name] = (data, mtime)


# --- the provider (lifeboat.storage.registry) ---------------------------------------------------
def check(url: StorageUrl) -> None:
    """``memory:`` takes no provider options."""
    Options(url, ())


def connect(url: StorageUrl, env: Mapping[str, str]) -> MemoryBackend:
    """A new, empty store (the provider for ``memory:``); reads nothing from ``env``."""
    check(url)
    return MemoryBackend()
