"""Snapshot bundles: many snapshot objects in one, so a host that has never read the
repository does not fetch ten thousand small objects to list its snapshots.

A bundle (``bundles/<id>``, sealed like every stand-alone object) holds snapshot objects
*byte for byte as stored*, each under its id. A snapshot's id is the hash of its stored
bytes, so a reader checks every copy it takes from a bundle against its name exactly as it
checks an object it fetched, then decrypts it with the snapshot's own key: a bundle can
spare a reader requests, never make it believe a record the snapshot object does not hold.
Readers take from bundles only ids the listing of ``snapshots/`` shows in the same run (a
bundle may still hold snapshots ``forget`` has removed since), and fetch whatever a bundle
lacks or holds damaged.

``prune`` writes them (docs/format.md §15): under its exclusive lock, when the bundles
do not hold exactly the listed snapshots, it writes one bundle of all of them, then
removes the older ones. A crash between the two leaves two bundles that overlap, which
readers take as a union.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from lifeboat.errors import IntegrityError

BUNDLE_VERSION = 1
# A reader consults the bundles when it misses at least this many snapshots: fewer are
# fetched one by one sooner than a bundle of thousands is read.
MIN_BUNDLED = 64
_HEAD = struct.Struct("<BI")  # version, count
_ENTRY = struct.Struct("<32sI")  # snapshot id, length of the stored object


@dataclass(frozen=True)
class SnapshotBundle:
    """Snapshot objects by id (hex): the stored, sealed bytes of each."""

    objects: dict[str, bytes]

    def encode(self) -> bytes:
        parts = [_HEAD.pack(BUNDLE_VERSION, len(self.objects))]
        for snapshot_id in sorted(self.objects):
            data = self.objects[snapshot_id]
            parts.append(_ENTRY.pack(bytes.fromhex(snapshot_id), len(data)))
            parts.append(data)
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes, what: str = "bundle") -> SnapshotBundle:
        """A bundle's payload; IntegrityError when it is not a whole bundle of this version."""
        view = memoryview(payload)
        if len(view) < _HEAD.size:
            raise IntegrityError(f"{what}: truncated")
        version, count = _HEAD.unpack_from(view)
        if version != BUNDLE_VERSION:
            raise IntegrityError(f"{what}: version {version} is not one this Lifeboat reads")
        if count * _ENTRY.size > len(view) - _HEAD.size:
            raise IntegrityError(f"{what}: claims {count} snapshots, more than it can hold")
        objects: dict[str, bytes] = {}
        offset = _HEAD.size
        for _ in range(count):
            if offset + _ENTRY.size > len(view):
                raise IntegrityError(f"{what}: truncated")
            raw_id, length = _ENTRY.unpack_from(view, offset)
            offset += _ENTRY.size
            if offset + length > len(view):
                raise IntegrityError(f"{what}: truncated")
            snapshot_id = raw_id.hex()
            if snapshot_id in objects:
                raise IntegrityError(f"{what}: holds snapshot {snapshot_id[:8]} twice")
            objects[snapshot_id] = bytes(view[offset : offset + length])
            offset += length
        if offset != len(view):
            raise IntegrityError(f"{what}: {len(view) - offset} bytes after its last snapshot")
        return cls(objects)


__all__ = ["BUNDLE_VERSION", "MIN_BUNDLED", "SnapshotBundle"]
