"""The base of every wrapper: a backend that forwards each call to the one it wraps.

Wrappers (retry, read-only, read-ahead, faults) keep the storage contract and change one
concern; they subclass :class:`BackendWrapper` and override only the calls they change.
``inner`` lets helpers such as :func:`lifeboat.storage.base.object_lock` reach the provider.
"""

from __future__ import annotations

from collections.abc import Iterator

from lifeboat.storage.base import Backend, ObjectInfo, connections, read_stream


class BackendWrapper:
    """Forwards every call to ``inner``."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner

    @property
    def inner(self) -> Backend:
        return self._inner

    @property
    def location(self) -> str:
        return self._inner.location

    @property
    def connections(self) -> int:
        return connections(self._inner)

    def get(self, name: str) -> bytes:
        return self._inner.get(name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        return self._inner.get_range(name, offset, length)

    def get_stream(self, name: str, offset: int, length: int) -> Iterator[bytes]:
        return read_stream(self._inner, name, offset, length)

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        self._inner.put(name, data, if_absent=if_absent)

    def delete(self, name: str) -> None:
        self._inner.delete(name)

    def stat(self, name: str) -> ObjectInfo:
        return self._inner.stat(name)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self._inner.list(prefix)

    def close(self) -> None:
        self._inner.close()
