"""The WAL archive: PostgreSQL's archived files as name-addressed, encrypted objects.

Each file PostgreSQL archives (segment, ``.history``, ``.backup``, ``.partial``) becomes
one stand-alone object ``wal/<system identifier>/<timeline>/<file name>``: compressed,
then sealed as an ``ObjectKind.WAL`` object. The sealed payload starts with the file's
name, size and BLAKE3 hash, so an object moved to another name, truncated or swapped is
refused on read. Objects are written put-if-absent: pushing identical content again
succeeds, different content under an archived name raises :class:`WalConflict`.
Namespacing by system identifier keeps clusters that share a repository apart.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import blake3
import zstandard

from lifeboat.core.wal import MAX_SEGMENT_SIZE, parse_wal_file_name
from lifeboat.errors import IntegrityError, StorageAlreadyExists, StorageNotFound, WalConflict, WalDamaged
from lifeboat.repository.compression import CODEC_NONE, CODEC_ZSTD, Compressor
from lifeboat.repository.crypto.aead import ObjectKind
from lifeboat.repository.repo import Repository
from lifeboat.repository.wallisting import ArchivedFile, WalListing, archived_path
from lifeboat.storage.base import ObjectInfo, directory_names

WAL_PREFIX = "wal/"
WAL_COMPRESSION_LEVEL = 1
_MAGIC = b"LBWAL\x01"
_NAME_LEN = struct.Struct("<H")
_SIZE = struct.Struct("<Q")
_HASH_BYTES = 32
_PREFIX_MAX = len(_MAGIC) + _NAME_LEN.size + 0xFFFF + _SIZE.size + _HASH_BYTES
_MAX_PAYLOAD = MAX_SEGMENT_SIZE + 4096  # the largest segment and its embedded name, size and hash
READ_CHUNK = 1024 * 1024
HEAD_BYTES = 512  # what read_verified keeps of a file by default: enough for a page header
_decompressors = threading.local()


class PushOutcome(StrEnum):
    STORED = "stored"
    ALREADY_ARCHIVED = "already-archived"  # identical content was there


def check_system_id(system_id: str) -> str:
    if not system_id.isdigit() or len(system_id) > 20:
        raise ValueError(f"invalid system identifier {system_id!r}")
    return system_id


def object_name(system_id: str, name: str) -> str:
    """``wal/<system id>/<timeline>/<name>`` (the first 8 hex digits of a WAL name are its timeline)."""
    parse_wal_file_name(name)
    return f"{WAL_PREFIX}{check_system_id(system_id)}/{name[:8]}/{name}"


def encode_payload(name: str, data: bytes) -> bytes:
    encoded = name.encode("ascii")
    digest = blake3.blake3(data, max_threads=1).digest()
    return b"".join((_MAGIC, _NAME_LEN.pack(len(encoded)), encoded, _SIZE.pack(len(data)), digest, data))


def _head_size(name: str) -> int:
    return len(_MAGIC) + _NAME_LEN.size + len(name.encode("ascii")) + _SIZE.size + _HASH_BYTES


class PayloadBuffer:
    """One reusable buffer laid out as a WAL object's payload (:func:`encode_payload`): the
    embedded name, size and hash, then the file's bytes, read straight in after them.

    A pusher thread keeps one, so pushing a 16 MiB segment allocates, faults in and copies
    no 16 MiB buffer of its own (reading into fresh ``bytes`` and joining them behind the
    head cost a fifth of a push's CPU). What :meth:`content_area` and :meth:`payload` return
    is valid until the next file is read into the buffer.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def content_area(self, name: str, capacity: int) -> memoryview:
        """Room for up to ``capacity`` bytes of the file ``name``, behind its head."""
        head = _head_size(name)
        if len(self._buffer) < head + capacity:
            self._buffer = bytearray(head + capacity)  # a new one: views of the old stay valid
        return memoryview(self._buffer)[head : head + capacity]

    def payload(self, name: str, size: int) -> memoryview:
        """The payload of ``name`` once its ``size`` bytes are in :meth:`content_area`: hashes
        them and writes the head in front."""
        encoded = name.encode("ascii")
        head = _head_size(name)
        view = memoryview(self._buffer)
        digest = blake3.blake3(view[head : head + size], max_threads=1).digest()
        pos = 0
        for part in (_MAGIC, _NAME_LEN.pack(len(encoded)), encoded, _SIZE.pack(size), digest):
            view[pos : pos + len(part)] = part
            pos += len(part)
        return view[: head + size]


def _payload_prefix(name: str, payload: bytes | bytearray | memoryview, what: str) -> tuple[int, int, bytes]:
    """(where the file's content starts, its size, its hash), after checking the embedded name."""
    fixed = len(_MAGIC) + _NAME_LEN.size
    if len(payload) < fixed or bytes(payload[: len(_MAGIC)]) != _MAGIC:
        raise WalDamaged(f"{what}: not a Lifeboat WAL object")
    (name_len,) = _NAME_LEN.unpack_from(payload, len(_MAGIC))
    pos = fixed + name_len
    if len(payload) < pos + _SIZE.size + _HASH_BYTES:
        raise WalDamaged(f"{what}: the object ends inside its header (truncated)")
    stored_name = bytes(payload[fixed:pos]).decode("ascii", errors="replace")
    if stored_name != name:
        raise WalDamaged(f"{what}: the object holds {stored_name} (moved or swapped)")
    (size,) = _SIZE.unpack_from(payload, pos)
    pos += _SIZE.size
    return pos + _HASH_BYTES, size, bytes(payload[pos : pos + _HASH_BYTES])


def decode_payload(name: str, payload: bytes) -> bytes:
    """The file content, after checking the embedded name, size and hash."""
    what = f"archived WAL file {name}"
    pos, size, digest = _payload_prefix(name, payload, what)
    data = payload[pos:]
    if len(data) != size:
        raise WalDamaged(f"{what}: {len(data)} bytes, expected {size} (truncated)")
    if blake3.blake3(data, max_threads=1).digest() != digest:
        raise WalDamaged(f"{what}: content does not match its hash (damaged)")
    return data


def _dctx() -> zstandard.ZstdDecompressor:
    dctx = getattr(_decompressors, "dctx", None)
    if dctx is None:
        dctx = _decompressors.dctx = zstandard.ZstdDecompressor()
    return dctx


def _decompress(payload: bytes, what: str) -> bytes:
    if not payload:
        raise WalDamaged(f"{what}: empty payload")
    if payload[0] == CODEC_NONE:
        return payload[1:]
    if payload[0] != CODEC_ZSTD:
        raise WalDamaged(f"{what}: unknown compression codec {payload[0]}")
    try:
        return bytes(_dctx().decompress(payload[1:], max_output_size=_MAX_PAYLOAD))
    except zstandard.ZstdError as exc:
        raise WalDamaged(f"{what}: does not decompress: {exc}") from None


def _payload_chunks(payload: bytes, what: str) -> Iterator[bytes | memoryview]:
    """The decompressed payload in pieces of at most :data:`READ_CHUNK` bytes."""
    if not payload:
        raise WalDamaged(f"{what}: empty payload")
    body = memoryview(payload)[1:]
    if payload[0] == CODEC_NONE:
        for start in range(0, len(body), READ_CHUNK):
            yield body[start : start + READ_CHUNK]
        return
    if payload[0] != CODEC_ZSTD:
        raise WalDamaged(f"{what}: unknown compression codec {payload[0]}")
    total = 0
    try:
        with _dctx().stream_reader(body) as reader:
            while chunk := reader.read(READ_CHUNK):
                total += len(chunk)
                if total > _MAX_PAYLOAD:
                    raise WalDamaged(f"{what}: decompresses beyond the largest WAL segment")
                yield chunk
    except zstandard.ZstdError as exc:
        raise WalDamaged(f"{what}: does not decompress: {exc}") from None


@dataclass(frozen=True)
class WalContent:
    """What reading an archived file back proved: its size, and its first bytes."""

    name: str
    size: int
    head: bytes  # the first bytes (HEAD_BYTES unless asked otherwise)
    stored_bytes: int  # the sealed object's size


class WalArchive:
    """The archived WAL of one cluster (one system identifier) in a repository."""

    def __init__(self, repo: Repository, system_id: str, *, compressor: Compressor | None = None) -> None:
        self.repo = repo
        self.system_id = check_system_id(system_id)
        # zstd level 1: on pgbench WAL twice as fast as level 3 for 11 % more bytes, and
        # archiving must keep up with the database.
        self._compressor = compressor or Compressor(min(repo.compressor.level, WAL_COMPRESSION_LEVEL))

    @property
    def prefix(self) -> str:
        return f"{WAL_PREFIX}{self.system_id}/"

    def object_name(self, name: str) -> str:
        return object_name(self.system_id, name)

    @property
    def compression_level(self) -> int:
        return self._compressor.level

    def compress(self, payload: bytes | memoryview) -> bytes:
        """The compressed payload (:func:`encode_payload`, :class:`PayloadBuffer`) to :meth:`store`."""
        return self._compressor.compress(payload)

    def seal(self, name: str, data: bytes) -> bytes:
        return self.repo.objects.seal(ObjectKind.WAL, self.compress(encode_payload(name, data)))

    def push(self, name: str, data: bytes) -> PushOutcome:
        """Store ``data`` as ``name``; returns once it is durable. Identical re-push succeeds."""
        return self.store(name, self.compress(encode_payload(name, data)), data)

    def store(self, name: str, compressed: bytes, data: bytes | memoryview) -> PushOutcome:
        """Store the file ``name`` (content ``data``) from its payload compressed at
        :attr:`compression_level`; returns once it is durable. The compression needs no key,
        so a pusher can do it while the repository is still being unlocked."""
        sealed = self.repo.objects.seal(ObjectKind.WAL, compressed)
        try:
            self.repo.backend.put(self.object_name(name), sealed, if_absent=True)
        except StorageAlreadyExists:
            try:
                existing = self.fetch(name)
            except IntegrityError as exc:
                raise WalConflict(
                    f"WAL file {name} is already archived but the archived copy is unreadable: {exc}",
                    hint="'lifeboat check --read-data' shows every damaged WAL file; the copy PostgreSQL "
                    f"retries from pg_wal is the good one: removing the damaged {self.object_name(name)} "
                    "lets archiving store it again",
                ) from None
            if existing != data:
                raise WalConflict(
                    f"WAL file {name} is already archived with different content "
                    f"(archived {len(existing)} bytes, pushed {len(data)} bytes); refusing to overwrite"
                ) from None
            return PushOutcome.ALREADY_ARCHIVED
        return PushOutcome.STORED

    def fetch(self, name: str) -> bytes:
        """The verified content of an archived file; StorageNotFound when not archived."""
        sealed = self.repo.backend.get(self.object_name(name))
        return self.open(name, sealed)

    def open(self, name: str, sealed: bytes) -> bytes:
        what = f"archived WAL file {name}"
        return decode_payload(name, _decompress(self._authenticate(name, sealed, what), what))

    def _authenticate(self, name: str, sealed: bytes, what: str) -> bytes:
        try:
            return self.repo.objects.open(ObjectKind.WAL, sealed, what=what)
        except IntegrityError as exc:
            raise WalDamaged(exc.message) from None

    def read_verified(self, name: str, *, keep: int = HEAD_BYTES) -> WalContent:
        """Read ``name`` back and prove it whole — authenticated, decompressed, its embedded
        name, size and hash checked — holding only the sealed object and a chunk of the
        file at a time; keeps the first ``keep`` bytes. StorageNotFound when not archived,
        WalDamaged when damaged."""
        what = f"archived WAL file {name}"
        sealed = self.repo.backend.get(self.object_name(name))
        stored = len(sealed)
        plain = self._authenticate(name, sealed, what)
        del sealed
        chunks = _payload_chunks(plain, what)
        pending = bytearray()
        for chunk in chunks:
            pending += chunk
            if len(pending) >= _PREFIX_MAX:
                break
        start, size, digest = _payload_prefix(name, pending, what)
        hasher = blake3.blake3(max_threads=1)
        content = memoryview(pending)[start:]
        head = bytes(content[:keep])
        hasher.update(content)
        length = len(content)
        content.release()
        for chunk in chunks:
            if len(head) < keep:
                head += bytes(chunk[: keep - len(head)])
            hasher.update(chunk)
            length += len(chunk)
        if length != size:
            raise WalDamaged(f"{what}: {length} bytes, expected {size} (truncated)")
        if hasher.digest() != digest:
            raise WalDamaged(f"{what}: content does not match its hash (damaged)")
        return WalContent(name, size, head, stored)

    def exists(self, name: str) -> bool:
        try:
            self.repo.backend.stat(self.object_name(name))
        except StorageNotFound:
            return False
        return True

    def listing(self) -> WalListing:
        """Every archived file of this cluster, compactly: from the repository's ``wal_catalog``
        (a local catalogue checked against the storage) when it has one, else one listing."""
        catalog = self.repo.wal_catalog
        if catalog is not None:
            return catalog.listing(self.repo, self.system_id)
        return self.list_storage()

    def list_storage(self) -> WalListing:
        """Every archived file of this cluster, from one listing of the storage."""
        cut = len(self.prefix)
        try:
            infos = [(i.name[cut:], i.size, i.mtime) for i in self.repo.backend.list(self.prefix)]
        except StorageNotFound:
            return WalListing()
        return WalListing.of(info for info in infos if archived_path(info[0]))

    def files(self) -> Iterator[ArchivedFile]:
        """Every archived file of this cluster, in no particular order."""
        try:
            listing = list(self.repo.backend.list(self.prefix))
        except StorageNotFound:
            return
        for info in listing:
            found = _archived(info)
            if found is not None and found[0] == self.system_id:
                yield found[1]

    def delete(self, name: str) -> None:
        self.repo.ensure_locked()
        self.repo.backend.delete(self.object_name(name))


def _archived(info: ObjectInfo) -> tuple[str, ArchivedFile] | None:
    """The cluster (system identifier) and archived file an object under ``wal/`` holds;
    None for an object that is not where an archived file of its name belongs."""
    parts = info.name.split("/")
    if len(parts) != 4:
        return None
    top, system_id, directory, name = parts
    # Where object_name puts it (checked without building the name again: this runs per WAL file)
    if top != WAL_PREFIX[:-1] or directory != name[:8] or not system_id.isdigit() or len(system_id) > 20:
        return None
    try:
        parsed = parse_wal_file_name(name)
    except ValueError:
        return None
    return system_id, ArchivedFile(name, info.size, info.mtime, parsed)


def archived_files(repo: Repository) -> Iterator[tuple[str, ArchivedFile]]:
    """Every archived file of every cluster, with its system identifier, from one listing."""
    try:
        listing = list(repo.backend.list(WAL_PREFIX))
    except StorageNotFound:
        return
    for info in listing:
        found = _archived(info)
        if found is not None:
            yield found


def archived_systems(repo: Repository) -> list[str]:
    """The system identifiers that have WAL in the repository (their directories under
    ``wal/``: listed without listing every archived file where the storage allows)."""
    try:
        names = directory_names(repo.backend, WAL_PREFIX)
    except StorageNotFound:
        return []
    found = (name[len(WAL_PREFIX) :].rstrip("/") for name in names)
    return sorted(system for system in found if system.isdigit())
