"""A wrapper that refuses every write: for commands that must not change a repository."""

from __future__ import annotations

from lifeboat.errors import StorageReadOnly
from lifeboat.storage.wrapper import BackendWrapper


class ReadOnlyBackend(BackendWrapper):
    """Reads pass through; ``put`` and ``delete`` raise :class:`StorageReadOnly`."""

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        raise StorageReadOnly(f"refusing to write {name}: the repository is open read-only")

    def delete(self, name: str) -> None:
        raise StorageReadOnly(f"refusing to delete {name}: the repository is open read-only")
