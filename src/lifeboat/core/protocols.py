"""The narrow interfaces sources see instead of the repository.

A source that backs something up needs only to store blobs and ask whether one is
stored; a source that restores needs only to load them. Keeping these small lets a
source be tested against an in-memory fake and keeps ``sources`` independent of
``repository``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Protocol, runtime_checkable

from lifeboat.core.ids import BlobType
from lifeboat.core.packreads import BlobWrite, Located, PackRead
from lifeboat.core.snapshot import Snapshot, UnreadableSnapshot
from lifeboat.core.tree import ParentEntry, Tree
from lifeboat.errors import IntegrityError


class BlobSaver(Protocol):
    """Stores blobs for a running backup."""

    def blob_id(self, data: bytes | memoryview) -> bytes:
        """The id the blob ``data`` would have (keyed hash)."""
        ...

    def save_blob(self, blob_type: BlobType, data: bytes | memoryview, blob_id: bytes | None = None) -> bool:
        """Store the blob unless it is already stored; True when this call stored it.

        May return before the blob is durable: durability comes with the session's commit.
        """
        ...

    def submit_blob(self, blob_type: BlobType, data: bytes | memoryview) -> Future[bytes]:
        """Like :meth:`save_blob`, hashing on a worker thread; the future gives the id."""
        ...

    def has_blob(self, blob_id: bytes) -> bool:
        """True when the blob is stored (or being stored by this session)."""
        ...

    def has_blobs(self, blob_ids: Sequence[bytes]) -> bool:
        """True when every one of the blobs is stored (one lookup pass for a whole file)."""
        ...

    def save_tree(self, tree: Tree) -> bytes:
        """Store a tree blob; returns its id."""
        ...


class BlobLoader(Protocol):
    """Reads blobs back, verified: damaged data raises IntegrityError, never returns."""

    def load_blob(self, blob_id: bytes, blob_type: BlobType = BlobType.DATA) -> bytes: ...

    def load_blobs(self, blob_ids: Sequence[bytes]) -> Iterator[bytes]:
        """The data blobs in order, neighbours in one pack fetched with one read."""
        ...

    def load_tree(self, tree_id: bytes) -> Tree: ...

    def raw_lengths(self, blob_ids: Sequence[bytes]) -> list[int]:
        """The plaintext size of each blob, from the index (nothing is read)."""
        ...


class TreeLoader(Protocol):
    """Gives trees by id (a :class:`BlobLoader` does; so does a :class:`TreeSource`)."""

    def load_tree(self, tree_id: bytes) -> Tree: ...


@runtime_checkable
class TreeSource(TreeLoader, Protocol):
    """The trees of one walk, read together where the storage allows: a walk that knows the
    trees it will need next says so, and their loads then cost no request."""

    def prefetch_trees(self, tree_ids: Iterable[bytes]) -> None:
        """A hint: read these trees now, together (a tree it cannot read is reported by its load)."""
        ...


class PackLoader(BlobLoader, Protocol):
    """Reads blobs by pack, for a restore that plans its reads (core/packreads.py)."""

    def tree_source(self) -> TreeSource:
        """A reader of the trees of one walk; it holds what it read (within a budget) until dropped."""
        ...

    def locate_data(self, blob_ids: Sequence[bytes]) -> Sequence[Located]:
        """Where each data blob lies; IntegrityError when one is missing or not data."""
        ...

    def read_pack_blobs(self, read: PackRead) -> Iterator[tuple[BlobWrite, bytes | IntegrityError]]:
        """The blobs of ``read`` in its order, each verified: its data, or its own error; a
        storage failure raises from the iterator."""
        ...


class ParentTrees(Protocol):
    """The trees of the snapshot a backup compares against (its parent)."""

    def parent_entries(self, tree_id: bytes) -> Mapping[str, ParentEntry]:
        """The entries of one tree of the parent, by name."""
        ...


class RepositoryReader(BlobLoader, ParentTrees, Protocol):
    """What a running backup may read of the repository: blobs and trees (the parent's),
    and the snapshots (to find the parent)."""

    def snapshots(self) -> list[Snapshot]:
        """Every snapshot, oldest first."""
        ...

    def snapshots_and_damage(self) -> tuple[list[Snapshot], list[UnreadableSnapshot]]:
        """Every snapshot that can be read, oldest first, and those that cannot."""
        ...

    def resolve_snapshot(self, ref: str, *, candidates: list[Snapshot] | None = None) -> Snapshot:
        """A snapshot by id prefix, or ``latest``."""
        ...


class ArchivedWal(Protocol):
    """The archived WAL of one database system, as a base backup waits for it."""

    def exists(self, name: str) -> bool:
        """True when the WAL file ``name`` is archived."""
        ...
