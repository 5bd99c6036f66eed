"""The index: which pack holds which blob.

*Index files* (``index/<id>``, encrypted) list packs and their blobs; together they
describe every pack a finished write session uploaded. An index file may name older
index files it *supersedes* (after ``repair index`` or ``prune``); readers ignore those.

In memory, :class:`BlobIndex` keeps the union of all index files in flat sorted arrays
rather than Python objects: about 57 bytes per blob (8-byte search key, 32-byte id,
16 bytes of location, 1 byte of type), measured in ``tests/unit/test_index.py`` and
documented in docs/format.md.
"""

from __future__ import annotations

import struct
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import NamedTuple

from lifeboat.core.ids import ID_BYTES, BlobType
from lifeboat.errors import IntegrityError
from lifeboat.repository.pack import ENTRY, ENTRY_BYTES, PackEntry

INDEX_VERSION = 1
_HEAD = struct.Struct("<BI")
_PACK_HEAD = struct.Struct("<32s16sQI")  # pack id, pack salt, pack size, entry count
# An index file's entries are capped so no single object grows without bound.
MAX_ENTRIES_PER_FILE = 100_000
_BLOB_TYPES = {t.value: t for t in BlobType}  # a dict lookup is cheaper than BlobType(value)


@dataclass
class IndexedPack:
    """One pack as an index file describes it."""

    pack_id: bytes
    salt: bytes  # the pack header's salt, so a blob can be decrypted without reading the header
    size: int
    entries: list[PackEntry]


def encode_pack(pack: IndexedPack) -> bytes:
    """One pack's part of an index file: a write session keeps these, not the entries, until
    it writes the index file (up to MAX_ENTRIES_PER_FILE blobs)."""
    head = _PACK_HEAD.pack(pack.pack_id, pack.salt, pack.size, len(pack.entries))
    return head + b"".join([ENTRY.pack(e.type, e.id, e.offset, e.length, e.raw_length) for e in pack.entries])


def encode_index_file(packs: list[bytes], supersedes: list[bytes] | None = None) -> bytes:
    """An index file of the encoded packs (:func:`encode_pack`) that supersedes ``supersedes``."""
    superseded = supersedes or []
    return b"".join([_HEAD.pack(INDEX_VERSION, len(superseded)), *superseded, struct.pack("<I", len(packs)), *packs])


@dataclass
class IndexFile:
    """The decoded contents of one index file."""

    packs: list[IndexedPack] = field(default_factory=list)
    supersedes: list[bytes] = field(default_factory=list)

    @property
    def entry_count(self) -> int:
        return sum(len(p.entries) for p in self.packs)

    def encode(self) -> bytes:
        return encode_index_file([encode_pack(pack) for pack in self.packs], self.supersedes)

    @classmethod
    def decode(cls, data: bytes) -> IndexFile:
        encoded = EncodedIndexFile.of(data)
        packs = [
            IndexedPack(pack_id, salt, size, [PackEntry(BlobType(e[0]), *e[1:]) for e in entries])
            for pack_id, salt, size, entries in encoded.packs()
        ]
        return cls(packs, encoded.supersedes)


@dataclass(frozen=True)
class EncodedIndexFile:
    """An index file's bytes, its header read: loading a :class:`BlobIndex` from these makes
    no object per blob (a decoded :class:`IndexFile` holds one, several times the blob's
    57 bytes in the index, and a process's heap keeps much of it after it is freed)."""

    data: bytes
    supersedes: list[bytes]
    _packs_at: int

    @classmethod
    def of(cls, data: bytes) -> EncodedIndexFile:
        try:
            version, n_superseded = _HEAD.unpack_from(data, 0)
        except struct.error as exc:
            raise IntegrityError("index file is truncated") from exc
        if version != INDEX_VERSION:
            raise IntegrityError(f"index file has unsupported version {version}")
        pos = _HEAD.size
        if pos + n_superseded * ID_BYTES > len(data):
            raise IntegrityError("index file is truncated")
        supersedes = [bytes(data[pos + i * ID_BYTES : pos + (i + 1) * ID_BYTES]) for i in range(n_superseded)]
        return cls(data, supersedes, pos + n_superseded * ID_BYTES)

    def packs(self) -> Iterator[tuple[bytes, bytes, int, Iterator[tuple[int, bytes, int, int, int]]]]:
        """(pack id, salt, size, its entries as ENTRY tuples) for each pack, each checked: a
        known blob type, inside its pack; the file whole, with no trailing bytes. A pack's
        entries are to be used before the next pack is asked for."""
        data = self.data
        try:
            (n_packs,) = struct.unpack_from("<I", data, self._packs_at)
            pos = self._packs_at + 4
            for _ in range(n_packs):
                pack_id, salt, size, count = _PACK_HEAD.unpack_from(data, pos)
                pos += _PACK_HEAD.size
                end = pos + count * ENTRY_BYTES
                if end > len(data):
                    raise IntegrityError("index file is truncated")
                yield pack_id, salt, size, _checked_entries(memoryview(data)[pos:end], size)
                pos = end
        except struct.error as exc:
            raise IntegrityError("index file is truncated") from exc
        if pos != len(data):
            raise IntegrityError("index file has trailing bytes")


def _checked_entries(block: memoryview, pack_size: int) -> Iterator[tuple[int, bytes, int, int, int]]:
    for entry in ENTRY.iter_unpack(block):
        if entry[0] not in _BLOB_TYPES:
            raise IntegrityError(f"index file names unknown blob type {entry[0]}")
        if entry[2] + entry[3] > pack_size:
            raise IntegrityError("index file entry points beyond its pack")
        yield entry


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """Where to find one blob."""

    pack_id: bytes
    type: BlobType
    offset: int
    length: int
    raw_length: int


_KEY_PREFIX = struct.Struct(">Q24x")  # the search key: a blob id's first 8 bytes, big-endian
_FILL_STEP = 16_384  # blobs placed at once when a load fills the arrays (their slices: ~1.5 MiB)


class _Sorted(NamedTuple):
    """One generation of the sorted arrays (search keys, ids, locations, types)."""

    keys: array[int]
    ids: bytearray
    locs: array[int]
    types: bytearray


def _sorted_tail(tail_ids: bytearray, tail_locs: array[int], tail_types: bytearray, start: int, end: int) -> _Sorted:
    """Tail entries ``[start, end)`` sorted by key, later copies of a blob left out (two
    backups stored it at once: the first copy wins): a load's whole tail, or a merge's run.
    One sort of an int per blob (key and position packed, so the sort stays in C), then the
    arrays filled a step of that order at a time: some 70 bytes per blob beside the arrays,
    not the ~390 of sorting ids and locations as objects."""
    ids = memoryview(tail_ids)[start * ID_BYTES : end * ID_BYTES]
    order = sorted((k << 32) | i for i, (k,) in enumerate(_KEY_PREFIX.iter_unpack(ids), start))
    locs_of = tail_locs.tobytes()
    if any(not (a ^ b) >> 32 for a, b in pairwise(order)):  # equal keys: the same blob twice?
        order = _first_copies(order, tail_ids)
    n = len(order)
    new = _Sorted(array("Q", [0]) * n, bytearray(n * ID_BYTES), array("I", [0]) * (n * 4), bytearray(n))
    to_locs = memoryview(new.locs).cast("B")
    for first in range(0, n, _FILL_STEP):
        last = min(n, first + _FILL_STEP)
        positions = [v & 0xFFFFFFFF for v in order[first:last]]
        new.keys[first:last] = array("Q", [v >> 32 for v in order[first:last]])
        new.ids[first * ID_BYTES : last * ID_BYTES] = b"".join(
            [tail_ids[p * ID_BYTES : (p + 1) * ID_BYTES] for p in positions]
        )
        to_locs[first * 16 : last * 16] = b"".join([locs_of[p * 16 : (p + 1) * 16] for p in positions])
        new.types[first:last] = bytes([tail_types[p] for p in positions])
    to_locs.release()
    return new


def _first_copies(order: list[int], tail_ids: bytearray) -> list[int]:
    """``order`` (packed key and position, sorted) without later copies of a blob."""
    kept: list[int] = []
    run_key, run_ids = -1, set()
    for v in order:
        key, p = v >> 32, v & 0xFFFFFFFF
        blob_id = bytes(tail_ids[p * ID_BYTES : (p + 1) * ID_BYTES])
        if key != run_key:
            run_key, run_ids = key, {blob_id}
        elif blob_id in run_ids:
            continue
        else:
            run_ids.add(blob_id)
        kept.append(v)
    return kept


def _merged(main: _Sorted, run: _Sorted) -> _Sorted:
    """``main`` and ``run`` as one new generation (neither is changed): ``run``'s blobs that
    ``main`` holds are left out (the first copy wins), the others placed by key, ``main``
    copied between them a slice at a time into arrays allocated once at their final size."""
    keys = main.keys
    n = len(main.types)
    total = n + len(run.types)
    new = _Sorted(array("Q", [0]) * total, bytearray(total * ID_BYTES), array("I", [0]) * (total * 4), bytearray(total))
    views = [memoryview(a).cast("B") for a in (*new, *main, run.keys, run.ids, run.locs)]
    to_keys, to_ids, to_locs, to_types, keys_at, ids_at, locs_at, types_at, run_keys_at, run_ids_at, run_locs_at = views
    copied = written = 0
    for j, key in enumerate(run.keys):
        at = bisect_right(keys, key, copied)  # after main's blobs of this key
        blob_id = run_ids_at[j * ID_BYTES : (j + 1) * ID_BYTES]
        i = at - 1
        while i >= 0 and keys[i] == key:  # main's blobs of this key: rarely one
            if ids_at[i * ID_BYTES : (i + 1) * ID_BYTES] == blob_id:
                break
            i -= 1
        else:
            i = -1
        if i >= 0:
            continue
        if at > copied:
            k = at - copied
            to_keys[written * 8 : (written + k) * 8] = keys_at[copied * 8 : at * 8]
            to_ids[written * ID_BYTES : (written + k) * ID_BYTES] = ids_at[copied * ID_BYTES : at * ID_BYTES]
            to_locs[written * 16 : (written + k) * 16] = locs_at[copied * 16 : at * 16]
            to_types[written : written + k] = types_at[copied:at]
            written, copied = written + k, at
        to_keys[written * 8 : (written + 1) * 8] = run_keys_at[j * 8 : (j + 1) * 8]
        to_ids[written * ID_BYTES : (written + 1) * ID_BYTES] = blob_id
        to_locs[written * 16 : (written + 1) * 16] = run_locs_at[j * 16 : (j + 1) * 16]
        to_types[written] = run.types[j]
        written += 1
    k = n - copied
    to_keys[written * 8 : (written + k) * 8] = keys_at[copied * 8 :]
    to_ids[written * ID_BYTES : (written + k) * ID_BYTES] = ids_at[copied * ID_BYTES :]
    to_locs[written * 16 : (written + k) * 16] = locs_at[copied * 16 :]
    to_types[written : written + k] = types_at[copied:]
    written += k
    for view in views:
        view.release()  # the arrays can be cut to size only with no view left
    del new.keys[written:], new.ids[written * ID_BYTES :], new.locs[written * 4 :], new.types[written:]
    return new


def _array(typecode: str, data: memoryview) -> array[int]:
    found: array[int] = array(typecode)
    found.frombytes(data)
    return found


def _key(blob_id: bytes | bytearray) -> int:
    return int.from_bytes(blob_id[:8], "big")


class BlobIndex:
    """Blob id → location, for millions of blobs in flat arrays.

    Additions go to an unsorted tail (a dict from id to tail position) that is merged
    into the sorted arrays once it holds a quarter as many blobs; lookups search both.
    :meth:`bulk_load` fills the tail from index files and merges it once. Into an empty index
    that is one sort of a packed int per blob; into a loaded one, the tail is sorted a run at a
    time and each run merged into the sorted arrays by slices, so what a merge allocates beyond
    the new arrays is bounded by a run, whatever the index's size (sorting ids and locations as
    objects peaked at ~400 bytes per indexed blob: 370 MiB for a million). Thread-safe:
    uploader threads add packs while readers look blobs up; a merge builds new arrays and
    never changes old ones, so :meth:`items` iterates a consistent generation unlocked.
    """

    MIN_TAIL = 4096
    # A merge sorts the tail this many blobs at a time (or a sixteenth of the index, if more):
    # its objects per blob, some 250 bytes, are a run's, not the whole index's.
    MERGE_RUN = 65_536

    def __init__(self) -> None:
        self._guard = threading.RLock()
        self._pack_ids: list[bytes] = []
        self._pack_numbers: dict[bytes, int] = {}
        self._pack_sizes: list[int] = []
        self._pack_salts: list[bytes] = []
        # sorted part
        self._keys: array[int] = array("Q")
        self._ids = bytearray()
        self._locs: array[int] = array("I")  # pack number, offset, length, raw length
        self._types = bytearray()
        # unsorted tail
        self._tail: dict[bytes, int] = {}
        self._tail_ids = bytearray()
        self._tail_locs: array[int] = array("I")
        self._tail_types = bytearray()

    # --- building ----------------------------------------------------------------------
    def _pack_number(self, pack: IndexedPack) -> int:
        number = self._pack_numbers.get(pack.pack_id)
        if number is None:
            number = len(self._pack_ids)
            self._pack_ids.append(pack.pack_id)
            self._pack_numbers[pack.pack_id] = number
            self._pack_sizes.append(pack.size)
            self._pack_salts.append(pack.salt)
        return number

    def _append_tail(self, number: int, entry: PackEntry) -> None:
        self._tail_ids += entry.id
        self._tail_locs.extend((number, entry.offset, entry.length, entry.raw_length))
        self._tail_types.append(entry.type)

    def add_pack(self, pack: IndexedPack) -> None:
        """Add one pack's blobs; a blob already indexed keeps its first location."""
        with self._guard:
            self._add_pack(pack)

    def _add_pack(self, pack: IndexedPack) -> None:
        number = self._pack_number(pack)
        for entry in pack.entries:
            if entry.id in self._tail or self._find_sorted(entry.id) >= 0:
                continue
            position = len(self._tail_types)
            self._append_tail(number, entry)
            self._tail[entry.id] = position
        if len(self._tail) >= max(self.MIN_TAIL, len(self._keys) // 4):
            self._compact()

    def bulk_load(self, index_files: Iterable[IndexFile | EncodedIndexFile]) -> None:
        """Add many index files at once, with one sort at the end."""
        with self._guard:
            self._bulk_load(index_files)

    def _bulk_load(self, index_files: Iterable[IndexFile | EncodedIndexFile]) -> None:
        self.compact()
        for index in index_files:
            if isinstance(index, EncodedIndexFile):
                self._load_encoded(index)
                continue
            for pack in index.packs:
                number = self._pack_number(pack)
                for entry in pack.entries:
                    self._append_tail(number, entry)
        self.compact()

    def _load_encoded(self, index: EncodedIndexFile) -> None:
        """Add the blobs of one encoded index file to the tail, checking them as they come: a
        damaged file adds nothing (what it added before the damage is taken back)."""
        blobs, packs = len(self._tail_types), len(self._pack_ids)
        try:
            for pack_id, salt, size, entries in index.packs():
                number = self._pack_number(IndexedPack(pack_id, salt, size, []))
                ids, locs, types = self._tail_ids, self._tail_locs, self._tail_types
                for blob_type, blob_id, offset, length, raw_length in entries:
                    ids += blob_id
                    locs.extend((number, offset, length, raw_length))
                    types.append(blob_type)
        except BaseException:
            del self._tail_ids[blobs * ID_BYTES :], self._tail_locs[blobs * 4 :], self._tail_types[blobs:]
            for pack_id in self._pack_ids[packs:]:
                del self._pack_numbers[pack_id]
            del self._pack_ids[packs:], self._pack_sizes[packs:], self._pack_salts[packs:]
            raise

    def compact(self) -> None:
        """Merge the tail into the sorted arrays, dropping duplicate ids (first wins)."""
        with self._guard:
            self._compact()

    def _compact(self) -> None:
        n_tail = len(self._tail_types)
        if not n_tail:
            return
        tail = (self._tail_ids, self._tail_locs, self._tail_types)
        if not self._types:  # a load: one sort
            self._keys, self._ids, self._locs, self._types = _sorted_tail(*tail, 0, n_tail)
            self._clear_tail()
            return
        generation = _Sorted(self._keys, self._ids, self._locs, self._types)
        run = max(self.MERGE_RUN, (len(self._types) + n_tail) // 16)
        for start in range(0, n_tail, run):
            generation = _merged(generation, _sorted_tail(*tail, start, min(n_tail, start + run)))
        self._keys, self._ids, self._locs, self._types = generation
        self._clear_tail()

    def _clear_tail(self) -> None:
        self._tail = {}
        self._tail_ids = bytearray()
        self._tail_locs = array("I")
        self._tail_types = bytearray()

    # --- lookups -----------------------------------------------------------------------
    def _find_sorted(self, blob_id: bytes) -> int:
        key = _key(blob_id)
        i = bisect_left(self._keys, key)
        n = len(self._keys)
        while i < n and self._keys[i] == key:
            if self._ids[i * ID_BYTES : (i + 1) * ID_BYTES] == blob_id:
                return i
            i += 1
        return -1

    def __contains__(self, blob_id: object) -> bool:
        if not isinstance(blob_id, bytes):
            return False
        with self._guard:
            return blob_id in self._tail or self._find_sorted(blob_id) >= 0

    def has_all(self, blob_ids: Iterable[bytes]) -> bool:
        """True when every one of ``blob_ids`` is indexed (one lock for the lot)."""
        with self._guard:
            tail, find = self._tail, self._find_sorted
            return all(b in tail or find(b) >= 0 for b in blob_ids)

    def lookup(self, blob_id: bytes) -> BlobLocation | None:
        with self._guard:
            pos = self._tail.get(blob_id)
            if pos is not None:
                return self._location(self._tail_locs, self._tail_types, pos)
            i = self._find_sorted(blob_id)
            if i < 0:
                return None
            return self._location(self._locs, self._types, i)

    def _location(self, locs: array[int], types: bytearray, i: int) -> BlobLocation:
        number, offset, length, raw_length = locs[i * 4 : i * 4 + 4]
        return BlobLocation(self._pack_ids[number], _BLOB_TYPES[types[i]], offset, length, raw_length)

    def __len__(self) -> int:
        with self._guard:
            return len(self._keys) + len(self._tail)

    def position(self, blob_id: bytes) -> int:
        """A dense position in ``[0, len)`` for ``blob_id``, or -1; stable until the next add."""
        with self._guard:
            self._compact()
            return self._find_sorted(blob_id)

    def at(self, position: int) -> tuple[bytes, BlobLocation]:
        """The blob id and location at a :meth:`position`."""
        with self._guard:
            i = position
            return bytes(self._ids[i * ID_BYTES : (i + 1) * ID_BYTES]), self._location(self._locs, self._types, i)

    @property
    def pack_ids(self) -> list[bytes]:
        with self._guard:
            return list(self._pack_ids)

    def pack_size(self, pack_id: bytes) -> int:
        with self._guard:
            return self._pack_sizes[self._pack_numbers[pack_id]]

    def pack_salt(self, pack_id: bytes) -> bytes:
        with self._guard:
            return self._pack_salts[self._pack_numbers[pack_id]]

    def has_pack(self, pack_id: bytes) -> bool:
        with self._guard:
            return pack_id in self._pack_numbers

    def items(self) -> Iterator[tuple[bytes, BlobLocation]]:
        """Every (blob id, location); order unspecified."""
        with self._guard:
            self._compact()
            ids, locs, types, packs = self._ids, self._locs, self._types, list(self._pack_ids)
        for i in range(len(types)):
            number, offset, length, raw_length = locs[i * 4 : i * 4 + 4]
            location = BlobLocation(packs[number], BlobType(types[i]), offset, length, raw_length)
            yield bytes(ids[i * ID_BYTES : (i + 1) * ID_BYTES]), location

    # --- a local copy (operations/indexcache.py) ------------------------------------------
    _DUMP_HEAD = struct.Struct("<4sQQ")  # magic, packs, blobs

    def dump(self) -> bytes:
        """The compacted arrays as bytes, in this host's byte order: a local cache of the union
        of index files (never stored in a repository), read back by :meth:`restore`."""
        with self._guard:
            self._compact()
            n_packs, n_blobs = len(self._pack_ids), len(self._types)
            return b"".join(
                (
                    self._DUMP_HEAD.pack(b"LBIX", n_packs, n_blobs),
                    b"".join(self._pack_ids),
                    b"".join(self._pack_salts),
                    array("Q", self._pack_sizes).tobytes(),
                    self._keys.tobytes(),
                    bytes(self._ids),
                    self._locs.tobytes(),
                    bytes(self._types),
                )
            )

    @classmethod
    def restore(cls, data: bytes | memoryview) -> BlobIndex:
        """The index :meth:`dump` gave; ValueError when ``data`` is not one whole."""
        view = memoryview(data)
        if len(view) < cls._DUMP_HEAD.size:
            raise ValueError("truncated")
        magic, n_packs, n_blobs = cls._DUMP_HEAD.unpack_from(view, 0)
        sizes = (n_packs * ID_BYTES, n_packs * 16, n_packs * 8, n_blobs * 8, n_blobs * ID_BYTES, n_blobs * 16, n_blobs)
        if magic != b"LBIX" or cls._DUMP_HEAD.size + sum(sizes) != len(view):
            raise ValueError("not an index dump")
        parts = []
        pos = cls._DUMP_HEAD.size
        for size in sizes:
            parts.append(view[pos : pos + size])
            pos += size
        pack_ids, salts, pack_sizes, keys, ids, locs, types = parts
        index = cls()
        index._pack_ids = [bytes(pack_ids[i : i + ID_BYTES]) for i in range(0, len(pack_ids), ID_BYTES)]
        index._pack_numbers = {pack_id: n for n, pack_id in enumerate(index._pack_ids)}
        index._pack_salts = [bytes(salts[i : i + 16]) for i in range(0, len(salts), 16)]
        index._pack_sizes = _array("Q", pack_sizes).tolist()
        index._keys = _array("Q", keys)
        index._ids = bytearray(ids)
        index._locs = _array("I", locs)
        index._types = bytearray(types)
        if any(t not in _BLOB_TYPES for t in set(index._types)) or max(index._locs[::4], default=0) >= max(n_packs, 1):
            raise ValueError("not an index dump")
        return index

    def memory_bytes(self) -> int:
        """Bytes held by the sorted arrays (the per-blob cost once compacted)."""
        return (
            len(self._keys) * self._keys.itemsize
            + len(self._ids)
            + len(self._locs) * self._locs.itemsize
            + len(self._types)
        )
