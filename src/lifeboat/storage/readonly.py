"""A wrapper that refuses every write: for commands that must not change a repository.

Writes are not only ``put`` and ``delete``: a provider's optional capabilities change
storage too (extending an object lock, removing a leftover temporary file), and the
helpers that find them (:func:`~lifeboat.storage.base.object_lock`,
:func:`~lifeboat.storage.base.temporaries`) walk down through ``inner``. This layer offers
those capabilities itself, reads passed through and writes refused, so a helper finds it
first and never reaches past it to the provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from lifeboat.errors import StorageReadOnly
from lifeboat.storage.base import ObjectInfo, object_lock, temporaries
from lifeboat.storage.wrapper import BackendWrapper


def _refused(what: str) -> StorageReadOnly:
    return StorageReadOnly(f"refusing to {what}: the repository is open read-only")


class ReadOnlyBackend(BackendWrapper):
    """Reads pass through; every write raises :class:`StorageReadOnly`."""

    passes_listing = True

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        raise _refused(f"write {name}")

    def delete(self, name: str) -> None:
        raise _refused(f"delete {name}")

    # --- ObjectLock: the period can be read, no lock changed ---------------------------------
    @property
    def lock_period(self) -> timedelta | None:
        found = object_lock(self._inner)
        return found.lock_period if found is not None else None

    def extend_lock(self, name: str, until: datetime, *, to: datetime | None = None) -> bool:
        raise _refused(f"extend the object lock of {name}")

    # --- Temporaries: leftovers can be listed, none removed -------------------------------------
    def temporaries(self) -> Iterator[ObjectInfo]:
        found = temporaries(self._inner)
        return found.temporaries() if found is not None else iter(())

    def remove_temporary(self, name: str) -> None:
        raise _refused(f"remove {name}")
