"""A wrapper that refuses every write: for commands that must not change a repository."""

from __future__ import annotations

from collections.abc import Iterator

from lifeboat.errors import StorageReadOnly
from lifeboat.storage.base import Backend, ObjectInfo, connections


class ReadOnlyBackend:
    """Reads pass through; ``put`` and ``delete`` raise :class:`StorageReadOnly`."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner

    @property
    def location(self) -> str:
        return self._inner.location

    @property
    def connections(self) -> int:
        return connections(self._inner)

    @property
    def inner(self) -> Backend:
        return self._inner

    def get(self, name: str) -> bytes:
        return self._inner.get(name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        return self._inner.get_range(name, offset, length)

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        raise StorageReadOnly(f"refusing to write {name}: the repository is open read-only")

    def delete(self, name: str) -> None:
        raise StorageReadOnly(f"refusing to delete {name}: the repository is open read-only")

    def stat(self, name: str) -> ObjectInfo:
        return self._inner.stat(name)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self._inner.list(prefix)

    def close(self) -> None:
        self._inner.close()
