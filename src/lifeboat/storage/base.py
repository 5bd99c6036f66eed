"""The storage contract every backend provides.

A backend stores opaque, immutable objects under opaque names such as
``data/3f/3f9a…``. It knows nothing of packs, keys or snapshots; everything it sees but
the format header and the key files is ciphertext. Names are ``/``-separated, never start
with ``/`` and never contain ``..``.

Guarantees a provider must give (the contract suite in ``tests/storage`` checks each):

* ``put`` is atomic: a reader sees either no object or the whole object, never a part.
  Once ``put`` returns, the object is durable and visible to ``get``/``stat``/``list``.
* ``put(..., if_absent=True)`` fails with :class:`StorageAlreadyExists` when an object of
  that name exists (atomically where the storage supports conditional writes).
* ``get`` of a missing name raises :class:`StorageNotFound`; so does ``stat``.
* ``get_range`` returns exactly ``length`` bytes, or fewer only at the end of the object.
* ``list(prefix)`` yields every object whose name starts with ``prefix`` exactly once,
  in no particular order, including objects nested in sub-"directories".
* ``delete`` of a missing name raises :class:`StorageNotFound`.
* Failures are raised as the :mod:`lifeboat.errors` storage classes; a failure worth
  retrying is a :class:`TransientStorageError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a listing or ``stat`` tells about one stored object."""

    name: str
    size: int
    mtime: float  # seconds since the epoch, as the storage reports it


@runtime_checkable
class Backend(Protocol):
    """A place that stores named, immutable objects."""

    @property
    def location(self) -> str:
        """A printable location without credentials (e.g. ``/srv/repo``, ``s3://b/p``)."""
        ...

    def get(self, name: str) -> bytes:
        """Return the whole object."""
        ...

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        """Return ``length`` bytes starting at ``offset``."""
        ...

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        """Store ``data`` under ``name`` atomically and durably."""
        ...

    def delete(self, name: str) -> None:
        """Remove the object."""
        ...

    def stat(self, name: str) -> ObjectInfo:
        """Return size and modification time of one object."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield every object whose name starts with ``prefix``."""
        ...

    def close(self) -> None:
        """Release connections and threads; the backend is unusable afterwards."""
        ...


def check_name(name: str) -> str:
    """Reject names that could escape the repository or are not canonical."""
    if (
        not name
        or name.startswith("/")
        or name.endswith("/")
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise ValueError(f"invalid storage object name {name!r}")
    return name
