"""The trees of one walk, read by pack: few requests for a whole snapshot's directories.

A walk (a restore and the size check before it) needs every tree of a snapshot, one
directory at a time; read one by one, that is a request per directory, and on remote storage
a request costs a round trip. Trees lie in packs of their own, written by the backups that
made them, so the trees of one snapshot fill few packs. :class:`TreeSpans` reads what the
trees asked for together need — per pack, the whole pack when it is small, else one *span*
over the needed trees and the small gaps between them — and keeps the spans' bytes (as
stored: ciphertext) within a budget, so the next trees found in them cost no request. Asked
a level of directories at a time, a snapshot's trees cost about a request per tree pack.

Every tree taken is still authenticated and checked against its id (the span is only bytes
of the pack); a tree that a span cannot give is read alone, so its error is its own.
Memory is the budget, whatever the snapshot: the least recently used spans are let go.
One walk, one thread: a reader is not shared between threads.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from lifeboat.core.ids import BlobType, short
from lifeboat.core.packreads import BlobWrite, Located, group_reads
from lifeboat.core.tree import Tree
from lifeboat.errors import IntegrityError, StorageError

if TYPE_CHECKING:
    from lifeboat.repository.index import BlobIndex, BlobLocation


class TreePacks(Protocol):
    """What a :class:`TreeSpans` reads through: the repository (named by this protocol, not
    imported, so that the repository can import this module back)."""

    def index(self) -> BlobIndex: ...

    def locate(self, blob_id: bytes) -> BlobLocation: ...

    def load_tree(self, tree_id: bytes) -> Tree: ...

    def decode_blob(self, blob_id: bytes, location: BlobLocation, ciphertext: bytes) -> bytes: ...

    def read_pack_span(self, pack_id: bytes, offset: int, length: int) -> bytes: ...


MiB = 1024 * 1024
SPANS_BUDGET = 64 * MiB  # pack bytes one walk keeps at most
WHOLE_PACK = 8 * MiB  # a tree pack this small is read whole the first time a tree of it is needed
SPAN_GAP = 1 * MiB  # in a larger pack, needed trees at most this far apart are read in one span
SPAN_LENGTH = 16 * MiB  # and one span is at most this long (unless one tree is longer)


@dataclass(frozen=True, slots=True, eq=False)
class Span:
    """Bytes of a pack, from ``offset`` (compared by identity: two spans are two reads)."""

    pack_id: bytes
    offset: int
    data: bytes

    def covers(self, location: Located) -> bool:
        start = location.offset - self.offset
        return start >= 0 and start + location.length <= len(self.data)

    def slice(self, location: Located) -> bytes:
        start = location.offset - self.offset
        return self.data[start : start + location.length]


class TreeSpans:
    """Loads the trees of one walk from spans of their packs, read together and kept."""

    def __init__(
        self,
        repo: TreePacks,
        *,
        budget: int = SPANS_BUDGET,
        whole_pack: int = WHOLE_PACK,
        gap: int = SPAN_GAP,
        span_length: int = SPAN_LENGTH,
    ) -> None:
        self._repo = repo
        self._budget = budget
        self._whole_pack = min(whole_pack, budget)
        self._gap = gap
        self._span_length = min(span_length, budget)
        self._spans: OrderedDict[tuple[bytes, int], Span] = OrderedDict()  # least recently used first
        self._by_pack: dict[bytes, list[Span]] = {}
        self._held = 0
        self.requests = 0  # spans read (what the walk's trees cost in requests)

    @property
    def held(self) -> int:
        """Pack bytes kept now (never more than the budget but for one span longer than it)."""
        return self._held

    def prefetch_trees(self, tree_ids: Iterable[bytes]) -> None:
        """Read, together, the spans that hold the trees of ``tree_ids`` not held yet: one
        request per pack (or per span of a large pack). A hint: trees it cannot find or read
        are left to :meth:`load_tree`, which reports them; one call reads at most half the
        budget, so what it read is still held when the loads that follow come."""
        index = self._repo.index()
        needed: dict[bytes, list[BlobWrite]] = {}
        for tree_id in tree_ids:
            location = index.lookup(tree_id)
            if location is None or location.type is not BlobType.TREE or self._span_of(location) is not None:
                continue
            needed.setdefault(location.pack_id, []).append(BlobWrite(tree_id, location))
        read = 0
        for pack_id, trees in needed.items():
            for offset, length, inside in self._spans_to_read(pack_id, trees):
                if read and read + length > self._budget // 2:
                    return
                if any(self._span_of(tree.location) is None for tree in inside):  # not read by an earlier span
                    read += self._read_span(pack_id, offset, length)

    def load_tree(self, tree_id: bytes) -> Tree:
        """The tree ``tree_id``, from a held span (read with its neighbours when none holds it),
        verified; IntegrityError or StorageError as :meth:`Repository.load_tree` raises them."""
        location = self._repo.locate(tree_id)
        if location.type is not BlobType.TREE:
            raise IntegrityError(f"blob {short(tree_id)} is a {location.type.name.lower()} blob, not tree")
        span = self._span_of(location)
        if span is None:
            self.prefetch_trees((tree_id,))
            span = self._span_of(location)
        if span is None:  # the span could not be read: read the tree alone, for its own error
            return self._repo.load_tree(tree_id)
        return Tree.decode(self._repo.decode_blob(tree_id, location, span.slice(location)))

    def _spans_to_read(self, pack_id: bytes, trees: list[BlobWrite]) -> list[tuple[int, int, list[BlobWrite]]]:
        """What to read of one pack for ``trees``: (offset, length, the trees inside) — the
        whole pack when it is small, else spans over the trees, small gaps read over."""
        size = self._repo.index().pack_size(pack_id)
        if size <= self._whole_pack:
            return [(0, size, trees)]
        reads = group_reads([trees], max_read=self._span_length, max_gap=self._gap)
        return [(read.offset, read.length, read.blobs) for read in reads]

    def _read_span(self, pack_id: bytes, offset: int, length: int) -> int:
        """Read and keep one span; the bytes read (0 when it could not be read: each tree of
        it is then read alone by :meth:`load_tree`, which reports the failure)."""
        try:
            data = self._repo.read_pack_span(pack_id, offset, length)
        except (IntegrityError, StorageError):
            return 0
        finally:
            self.requests += 1
        self._keep(Span(pack_id, offset, data))
        return len(data)

    def _span_of(self, location: Located) -> Span | None:
        for span in self._by_pack.get(location.pack_id, ()):
            if span.covers(location):
                self._spans.move_to_end((span.pack_id, span.offset))
                return span
        return None

    def _keep(self, span: Span) -> None:
        key = (span.pack_id, span.offset)
        if key in self._spans:
            self._drop(key)
        while self._spans and self._held + len(span.data) > self._budget:
            self._drop(next(iter(self._spans)))
        self._spans[key] = span
        self._by_pack.setdefault(span.pack_id, []).append(span)
        self._held += len(span.data)

    def _drop(self, key: tuple[bytes, int]) -> None:
        span = self._spans.pop(key)
        held = self._by_pack[span.pack_id]
        held.remove(span)
        if not held:
            del self._by_pack[span.pack_id]
        self._held -= len(span.data)


__all__ = ["SPANS_BUDGET", "Span", "TreeSpans"]
