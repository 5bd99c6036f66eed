"""The reads a restore makes: by pack, not by file.

A restore needs blobs for many files; the blobs of one file may lie in many packs, and one
pack holds blobs of many files. Reading file by file reads a pack many times, in small
requests, out of order. This plan groups every blob the files need by pack, puts each
pack's needed blobs in pack order, and joins neighbours into reads (a gap up to
``max_gap`` is read over: one request costs more than a little unneeded data), each at most
``max_read`` long. Every blob is read once however many files (or places in one file)
need it; each carries the places it goes to. Pure: the caller locates the blobs and does
the reading and writing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class Located(Protocol):
    """Where a blob lies in its pack (the index's :class:`BlobLocation`)."""

    @property
    def pack_id(self) -> bytes: ...
    @property
    def offset(self) -> int: ...
    @property
    def length(self) -> int: ...
    @property
    def raw_length(self) -> int: ...


@dataclass(slots=True)
class BlobWrite:
    """One blob to read, and every place it is written: (file number, offset in that file)."""

    blob_id: bytes
    location: Located
    targets: list[tuple[int, int]] = field(default_factory=list)


@dataclass(slots=True)
class PackRead:
    """One read of a pack: ``length`` bytes from ``offset``, bringing ``blobs`` in pack order."""

    pack_id: bytes
    offset: int
    length: int
    blobs: list[BlobWrite]


@dataclass(frozen=True, slots=True)
class FileBlobs:
    """A file the plan serves: its number (the caller's), its blobs in order and where they lie."""

    number: int
    blob_ids: Sequence[bytes]
    locations: Sequence[Located]


def plan_reads(files: Iterable[FileBlobs], *, max_read: int, max_gap: int) -> list[PackRead]:
    """The reads that bring every blob of ``files``: packs in the order the files first need
    them (so files finish early and in order), each pack's blobs in pack order."""
    wanted: dict[bytes, BlobWrite] = {}
    by_pack: dict[bytes, list[BlobWrite]] = {}  # insertion order: first need
    for file in files:
        position = 0
        for blob_id, location in zip(file.blob_ids, file.locations, strict=True):
            write = wanted.get(blob_id)
            if write is None:
                write = wanted[blob_id] = BlobWrite(blob_id, location)
                by_pack.setdefault(location.pack_id, []).append(write)
            write.targets.append((file.number, position))
            position += location.raw_length
    return group_reads(by_pack.values(), max_read=max_read, max_gap=max_gap)


def group_reads(packs: Iterable[list[BlobWrite]], *, max_read: int, max_gap: int) -> list[PackRead]:
    """The reads of a pack's blobs (``packs``: one list of blobs per pack, in the order the
    packs are wanted): each pack's blobs in pack order, neighbours at most ``max_gap`` apart
    joined into one read of at most ``max_read`` (a longer blob is one read of its own)."""
    reads: list[PackRead] = []
    for writes in packs:
        writes.sort(key=lambda w: w.location.offset)
        current: PackRead | None = None
        for write in writes:
            start, end = write.location.offset, write.location.offset + write.location.length
            if current is not None:
                current_end = current.offset + current.length
                if start - current_end <= max_gap and end - current.offset <= max_read:
                    current.length = max(current_end, end) - current.offset
                    current.blobs.append(write)
                    continue
            current = PackRead(write.location.pack_id, start, end - start, [write])
            reads.append(current)
    return reads


__all__ = ["BlobWrite", "FileBlobs", "Located", "PackRead", "group_reads", "plan_reads"]
