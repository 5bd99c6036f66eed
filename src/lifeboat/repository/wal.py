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

from lifeboat.core.wal import MAX_SEGMENT_SIZE, WalFileName, parse_wal_file_name
from lifeboat.errors import IntegrityError, StorageAlreadyExists, StorageNotFound, WalConflict
from lifeboat.repository.compression import CODEC_NONE, CODEC_ZSTD, Compressor
from lifeboat.repository.crypto.aead import ObjectKind
from lifeboat.repository.repo import Repository

WAL_PREFIX = "wal/"
WAL_COMPRESSION_LEVEL = 1
_MAGIC = b"LBWAL\x01"
_NAME_LEN = struct.Struct("<H")
_SIZE = struct.Struct("<Q")
_HASH_BYTES = 32
_decompressors = threading.local()


class PushOutcome(StrEnum):
    STORED = "stored"
    ALREADY_ARCHIVED = "already-archived"  # identical content was there


@dataclass(frozen=True)
class ArchivedFile:
    """One archived WAL file as the storage lists it."""

    name: str
    stored_bytes: int
    mtime: float
    parsed: WalFileName


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


def decode_payload(name: str, payload: bytes) -> bytes:
    """The file content, after checking the embedded name, size and hash."""
    what = f"archived WAL file {name}"
    if not payload.startswith(_MAGIC) or len(payload) < len(_MAGIC) + _NAME_LEN.size:
        raise IntegrityError(f"{what}: not a Lifeboat WAL object")
    pos = len(_MAGIC)
    (name_len,) = _NAME_LEN.unpack_from(payload, pos)
    pos += _NAME_LEN.size
    stored_name = payload[pos : pos + name_len].decode("ascii", errors="replace")
    pos += name_len
    if stored_name != name:
        raise IntegrityError(f"{what}: the object holds {stored_name} (moved or swapped)")
    (size,) = _SIZE.unpack_from(payload, pos)
    pos += _SIZE.size
    digest = payload[pos : pos + _HASH_BYTES]
    pos += _HASH_BYTES
    data = payload[pos:]
    if len(data) != size:
        raise IntegrityError(f"{what}: {len(data)} bytes, expected {size} (truncated)")
    if blake3.blake3(data, max_threads=1).digest() != digest:
        raise IntegrityError(f"{what}: content does not match its hash (damaged)")
    return data


def _decompress(payload: bytes, what: str) -> bytes:
    if not payload:
        raise IntegrityError(f"{what}: empty payload")
    if payload[0] == CODEC_NONE:
        return payload[1:]
    if payload[0] != CODEC_ZSTD:
        raise IntegrityError(f"{what}: unknown compression codec {payload[0]}")
    dctx = getattr(_decompressors, "dctx", None)
    if dctx is None:
        dctx = _decompressors.dctx = zstandard.ZstdDecompressor()
    try:
        return bytes(dctx.decompress(payload[1:], max_output_size=MAX_SEGMENT_SIZE + 4096))
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what}: does not decompress: {exc}") from None


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

    def seal(self, name: str, data: bytes) -> bytes:
        return self.repo.objects.seal(ObjectKind.WAL, self._compressor.compress(encode_payload(name, data)))

    def push(self, name: str, data: bytes) -> PushOutcome:
        """Store ``data`` as ``name``; returns once it is durable. Identical re-push succeeds."""
        sealed = self.seal(name, data)
        try:
            self.repo.backend.put(self.object_name(name), sealed, if_absent=True)
        except StorageAlreadyExists:
            try:
                existing = self.fetch(name)
            except IntegrityError as exc:
                raise WalConflict(
                    f"WAL file {name} is already archived but the archived copy is unreadable: {exc}",
                    hint="run 'lifeboat pg info'; remove the damaged object only if you are sure",
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
        plain = self.repo.objects.open(ObjectKind.WAL, sealed, what=what)
        return decode_payload(name, _decompress(plain, what))

    def exists(self, name: str) -> bool:
        try:
            self.repo.backend.stat(self.object_name(name))
        except StorageNotFound:
            return False
        return True

    def files(self) -> Iterator[ArchivedFile]:
        """Every archived file of this cluster, in no particular order."""
        try:
            listing = list(self.repo.backend.list(self.prefix))
        except StorageNotFound:
            return
        for info in listing:
            name = info.name.rsplit("/", 1)[-1]
            try:
                parsed = parse_wal_file_name(name)
            except ValueError:
                continue
            if info.name != self.object_name(name):
                continue
            yield ArchivedFile(name, info.size, info.mtime, parsed)

    def delete(self, name: str) -> None:
        self.repo.backend.delete(self.object_name(name))


def archived_systems(repo: Repository) -> list[str]:
    """The system identifiers that have WAL in the repository."""
    found: set[str] = set()
    try:
        for info in repo.backend.list(WAL_PREFIX):
            parts = info.name.split("/")
            if len(parts) == 4 and parts[1].isdigit():
                found.add(parts[1])
    except StorageNotFound:
        return []
    return sorted(found)
