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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from lifeboat.storage.ownership import AccessFindings


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


@runtime_checkable
class ObjectLock(Protocol):
    """Storage that can lock objects against deletion for a time (S3 Object Lock).

    Optional: a provider offers it only when writes are locked. Deletes of a locked
    object fail with :class:`StoragePermissionDenied` until the lock has passed.
    """

    @property
    def lock_period(self) -> timedelta | None:
        """How long a new object stays locked; None when writes are not locked."""
        ...

    def extend_lock(self, name: str, until: datetime, *, to: datetime | None = None) -> bool:
        """Keep ``name`` locked until at least ``until``, moving its lock to ``to`` (default
        ``until``) when that takes a change; False when no change was needed (or it is exempt)."""
        ...


TEMP_PREFIX = ".tmp-"  # a write not yet published, on storage that publishes by rename


def check_temporary_name(name: str) -> str:
    """Reject a name that is not a temporary file (so cleaning up can never remove an object)."""
    if not name.rpartition("/")[2].startswith(TEMP_PREFIX):
        raise ValueError(f"{name!r} is not a temporary file")
    return check_name(name)


@runtime_checkable
class Temporaries(Protocol):
    """Storage whose atomic publish writes a temporary file first (local disk, SFTP).

    Optional. A writer killed between creating and renaming its temporary file leaves it
    behind; listing never shows it, and ``prune`` removes those older than its margin.
    """

    def temporaries(self) -> Iterator[ObjectInfo]:
        """Every temporary file present, named by its path below the repository root."""
        ...

    def remove_temporary(self, name: str) -> None:
        """Remove one file :meth:`temporaries` yielded (gone already is not an error)."""
        ...


def _chain(backend: Backend) -> Iterator[object]:
    """``backend``, then each backend it wraps, down to the provider."""
    current: object = backend
    for _ in range(16):
        yield current
        current = getattr(current, "inner", None)
        if current is None:
            return


def object_lock(backend: Backend) -> ObjectLock | None:
    """The object-lock control of ``backend`` or of the provider it wraps, if writes are locked."""
    for layer in _chain(backend):
        if isinstance(layer, ObjectLock) and layer.lock_period is not None:
            return layer
    return None


def temporaries(backend: Backend) -> Temporaries | None:
    """The temporary-file control of the provider ``backend`` wraps, if it writes any."""
    for layer in _chain(backend):
        if isinstance(layer, Temporaries):
            return layer
    return None


@runtime_checkable
class AccessAudit(Protocol):
    """Storage whose permissions belong to OS users (a local directory).

    Optional. Tells which files and directories of the repository the calling process
    could not read or write, so a check run as another user can name them.
    """

    def access_problems(self, *, limit: int = 1000) -> AccessFindings:
        """What this process cannot read or write, the first ``limit`` problems listed."""
        ...


def access_audit(backend: Backend) -> AccessAudit | None:
    """The access audit of the provider ``backend`` wraps, if it has one."""
    for layer in _chain(backend):
        if isinstance(layer, AccessAudit):
            return layer
    return None


DEFAULT_CONNECTIONS = 2


def connections(backend: Backend) -> int:
    """How many requests ``backend`` serves well at once (its ``connections`` option).

    Optional for providers: a backend without a ``connections`` attribute gets
    :data:`DEFAULT_CONNECTIONS`. Wrappers pass their inner backend's value through.
    """
    value = getattr(backend, "connections", None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else DEFAULT_CONNECTIONS


STREAM_PIECE = 1024 * 1024  # what one step of a streamed read holds in memory


@runtime_checkable
class RangeStream(Protocol):
    """Storage that delivers a long range in pieces from one request (optional).

    A restore reads a pack's needed part whole, in one request where the storage allows,
    while holding only a piece of it at a time. The pieces joined are exactly what
    ``get_range(name, offset, length)`` returns; a failure part-way raises from the iterator.
    """

    def get_stream(self, name: str, offset: int, length: int) -> Iterator[bytes]: ...


def read_stream(backend: Backend, name: str, offset: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``name`` from ``offset`` in pieces: one streamed request when
    ``backend`` offers it (:class:`RangeStream`), else ranged reads of :data:`STREAM_PIECE`."""
    if isinstance(backend, RangeStream):
        return backend.get_stream(name, offset, length)
    return ranged_pieces(backend, name, offset, length)


def ranged_pieces(backend: Backend, name: str, offset: int, length: int) -> Iterator[bytes]:
    """A streamed read made of ranged reads of :data:`STREAM_PIECE` each."""
    end = offset + length
    while offset < end:
        piece = backend.get_range(name, offset, min(STREAM_PIECE, end - offset))
        if not piece:
            return  # the object ends here
        yield piece
        offset += len(piece)


class Staged(Protocol):
    """An object being written before it has a name (see :class:`Staging`)."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``."""
        ...

    def publish(self, name: str) -> None:
        """Make everything written the object ``name``, atomically and durably (as ``put``)."""
        ...

    def discard(self) -> None:
        """Drop what was written (nothing is published); safe to call after a failure."""
        ...


@runtime_checkable
class Staging(Protocol):
    """Storage that takes a large object piece by piece, before its name is known (optional).

    A backup names a pack by the hash of its bytes, known only once it is complete; storage
    that can stage lets it be written as it is filled, instead of held in memory whole. A
    process killed while staging leaves a temporary file (:class:`Temporaries`), which
    ``prune`` removes.
    """

    def stage(self, prefix: str) -> Staged:
        """Start an object that will be published under a name starting with ``prefix``."""
        ...


def staging(backend: Backend) -> Staging | None:
    """The staging of ``backend``'s provider, when it has one and every wrapper in between
    passes writes through unchanged (``passes_staging``): a wrapper that injects faults or
    refuses writes does not, so its writes keep going through ``put``."""
    for layer in _chain(backend):
        if isinstance(layer, Staging):
            return layer
        if not getattr(layer, "passes_staging", False):
            return None
    return None


@runtime_checkable
class ListsDirectories(Protocol):
    """Storage that lists the "directories" directly below a prefix without listing every
    object under them (optional: a local directory's entries, an object store's delimiter)."""

    def directories(self, prefix: str) -> list[str]:
        """The names of the directories directly below ``prefix`` (which ends with ``/``),
        each ending with ``/``, sorted; none when ``prefix`` holds nothing."""
        ...


def directory_names(backend: Backend, prefix: str) -> list[str]:
    """The directories directly below ``prefix`` (ending with ``/``): from the provider when it
    can list them and every wrapper in between passes listings through (``passes_listing``),
    else from a listing of every object below ``prefix``."""
    for layer in _chain(backend):
        if isinstance(layer, ListsDirectories):
            return layer.directories(prefix)
        if not getattr(layer, "passes_listing", False):
            break
    below = (info.name[len(prefix) :] for info in backend.list(prefix))
    return sorted({prefix + rest.split("/", 1)[0] + "/" for rest in below if "/" in rest.strip("/")})


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


@runtime_checkable
class NameListing(Protocol):
    """Storage that lists names alone faster than names with sizes and times.

    Optional. A local directory answers :meth:`Backend.list` with a ``stat`` of every file;
    a health check that needs only the names of a hundred thousand WAL objects (and the
    time of one of them) asks for the names.
    """

    def list_names(self, prefix: str = "") -> Iterator[str]:
        """The names :meth:`Backend.list` would give for ``prefix``."""
        ...


def _name_listing(backend: Backend) -> NameListing | None:
    """The layer that lists names alone, when every wrapper above it passes listings through
    (``passes_listing``: a fault-injecting wrapper does not, and must see the listing)."""
    for layer in _chain(backend):
        if isinstance(layer, NameListing):
            return layer
        if not getattr(layer, "passes_listing", False):
            return None
    return None


def lists_names_cheaply(backend: Backend) -> bool:
    """Whether :func:`list_names` is cheaper than :meth:`Backend.list` on ``backend`` (it has a
    name listing); where it is not, a caller that wants sizes and times lists them at once."""
    return _name_listing(backend) is not None


def list_names(backend: Backend, prefix: str = "") -> Iterator[str]:
    """The names of the objects below ``prefix``: from the provider's name listing when it
    has one (and the wrappers pass listings through), else from :meth:`Backend.list`."""
    layer = _name_listing(backend)
    if layer is not None:
        return layer.list_names(prefix)
    return (info.name for info in backend.list(prefix))


@runtime_checkable
class DirectoryStamps(Protocol):
    """Storage whose directories say when their entries last changed (a local file system).

    Optional. A directory's modification time changes whenever a name is added to it, removed
    from it or renamed in it, so a catalogue of names below a directory can ask two or three
    directories whether anything changed instead of listing a hundred thousand names.
    """

    def directory_stamps(self, prefix: str) -> dict[str, int]:
        """The modification times (ns) of the directory ``prefix`` names (key ``""``) and of each
        directory directly inside it (key ``"<name>/"``); empty when there is no such directory."""
        ...


def directory_stamps(backend: Backend, prefix: str) -> dict[str, int] | None:
    """:meth:`DirectoryStamps.directory_stamps` of the provider, when it has them and every
    wrapper above it passes listings through; None otherwise."""
    for layer in _chain(backend):
        if isinstance(layer, DirectoryStamps):
            return layer.directory_stamps(prefix)
        if not getattr(layer, "passes_listing", False):
            return None
    return None


@runtime_checkable
class SpaceReport(Protocol):
    """Storage that knows how much room it has left (a local file system).

    Optional. Object stores have no such number; a health check then says it is not known.
    """

    def space(self) -> tuple[int, int]:
        """(free bytes available to this process, total bytes)."""
        ...


def space_report(backend: Backend) -> SpaceReport | None:
    """The space report of the provider ``backend`` wraps, if it has one."""
    for layer in _chain(backend):
        if isinstance(layer, SpaceReport):
            return layer
    return None
