"""Pack files: many encrypted blobs in one object, with a self-describing trailer.

Layout (docs/format.md §Packs)::

    header   24 bytes  "LBPK" | version u8 | scheme u8 | 2 reserved | salt (16)
    blobs    AES-256-GCM ciphertexts, nonce = the blob's offset in the pack
    trailer  AES-256-GCM ciphertext of the entry table, AAD = the header
    footer   8 bytes   trailer length u32 LE | "LBPE"

The trailer lists every blob (type, id, offset, length, raw length), so the index can
always be rebuilt from the packs alone. A pack's name is the BLAKE3 hash of its bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import blake3

from lifeboat.core.ids import ID_BYTES, BlobType
from lifeboat.errors import IntegrityError
from lifeboat.repository.crypto.aead import FORMAT_VERSION, SCHEME_SYMMETRIC, TAG_BYTES, PackCipher

if TYPE_CHECKING:
    from lifeboat.repository.compression import Payload
    from lifeboat.storage.base import Staged

PACK_MAGIC = b"LBPK"
HEADER = struct.Struct("<4sBB2x16s")
HEADER_BYTES = HEADER.size  # 24
FOOTER = struct.Struct("<I4s")
FOOTER_BYTES = FOOTER.size  # 8
FOOTER_MAGIC = b"LBPE"
ENTRY = struct.Struct("<B32sIII")
ENTRY_BYTES = ENTRY.size  # 45
_TRAILER_HEAD = struct.Struct("<BI")
MAX_PACK_BYTES = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class PackEntry:
    """Where one blob sits in a pack."""

    type: BlobType
    id: bytes
    offset: int
    length: int  # ciphertext bytes in the pack
    raw_length: int  # plaintext bytes after decompression


def encode_trailer(entries: list[PackEntry]) -> bytes:
    parts = [_TRAILER_HEAD.pack(FORMAT_VERSION, len(entries))]
    parts.extend(ENTRY.pack(e.type, e.id, e.offset, e.length, e.raw_length) for e in entries)
    return b"".join(parts)


def decode_trailer(data: bytes, *, body_end: int) -> list[PackEntry]:
    """Parse and validate a trailer; entries must lie inside ``[HEADER_BYTES, body_end)``."""
    if len(data) < _TRAILER_HEAD.size:
        raise IntegrityError("pack trailer is truncated")
    version, count = _TRAILER_HEAD.unpack_from(data)
    if version != FORMAT_VERSION:
        raise IntegrityError(f"pack trailer has unsupported version {version}")
    if len(data) != _TRAILER_HEAD.size + count * ENTRY_BYTES:
        raise IntegrityError("pack trailer length does not match its entry count")
    entries: list[PackEntry] = []
    expected_offset = HEADER_BYTES
    for i in range(count):
        blob_type, blob_id, offset, length, raw_length = ENTRY.unpack_from(data, _TRAILER_HEAD.size + i * ENTRY_BYTES)
        if blob_type not in (BlobType.DATA, BlobType.TREE):
            raise IntegrityError(f"pack trailer entry {i} has unknown blob type {blob_type}")
        if offset != expected_offset or length < TAG_BYTES + 1 or offset + length > body_end:
            raise IntegrityError(f"pack trailer entry {i} points outside the pack's blobs")
        expected_offset = offset + length
        entries.append(PackEntry(BlobType(blob_type), blob_id, offset, length, raw_length))
    if expected_offset != body_end:
        raise IntegrityError("pack trailer does not account for every byte of the pack")
    return entries


class PackWriter:
    """Builds one pack: in memory, or — given a ``sink`` (storage that stages) — straight into
    storage as it is filled, hashing as it goes, so no pack is held in memory. Not thread-safe:
    its owner serialises the calls."""

    def __init__(self, encryption_root: bytes, sink: Staged | None = None) -> None:
        self._cipher = PackCipher.fresh(encryption_root)
        self._header = HEADER.pack(PACK_MAGIC, FORMAT_VERSION, SCHEME_SYMMETRIC, self._cipher.salt)
        # In memory, one growing buffer: each sealed blob is appended and freed at once, so a
        # pack is held once (a large buffer grows by remapping, not copying).
        self._buffer = bytearray()
        # Each blob is sealed, its codec byte and body in one stream, into a buffer grown to the
        # largest blob and reused: nothing is allocated per blob.
        self._sealed = bytearray()
        self.sink = sink
        self._hasher = blake3.blake3(max_threads=1)
        self._size = 0
        self._append(self._header)
        self.entries: list[PackEntry] = []
        self.raw_bytes = 0

    @property
    def size(self) -> int:
        return self._size

    @property
    def salt(self) -> bytes:
        return self._cipher.salt

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, blob_type: BlobType, blob_id: bytes, payload: Payload, raw_length: int) -> PackEntry:
        """Encrypt ``payload`` (codec byte + body) into the pack."""
        offset = self._size
        length = self._cipher.seal_blob_into(offset, blob_type, blob_id, payload.codec, payload.body, self._sealed)
        if offset + length > MAX_PACK_BYTES // 2:
            raise ValueError("pack grew beyond the format's limit")
        with memoryview(self._sealed) as sealed, sealed[:length] as ciphertext:
            self._append(ciphertext)
        entry = PackEntry(blob_type, blob_id, offset, length, raw_length)
        self.entries.append(entry)
        self.raw_bytes += raw_length
        return entry

    def _append(self, data: bytes | memoryview) -> None:
        if self.sink is not None:
            self.sink.write(data)
            self._hasher.update(data)
        else:
            self._buffer += data
        self._size += len(data)

    def finish(self) -> tuple[str, bytearray]:
        """Seal the trailer; return the pack's name-id (hex) and its bytes (the writer's
        buffer, handed over: the writer is spent) — empty when they went to the sink."""
        trailer = self._cipher.seal_trailer(self._header, encode_trailer(self.entries))
        self._append(trailer)
        self._append(FOOTER.pack(len(trailer), FOOTER_MAGIC))
        data, self._buffer = self._buffer, bytearray()
        if self.sink is not None:
            return self._hasher.hexdigest(), data
        return blake3.blake3(data, max_threads=1).hexdigest(), data

    def discard(self) -> None:
        """Drop the pack (a staged one is removed from storage)."""
        self._buffer = bytearray()
        if self.sink is not None:
            self.sink.discard()


def parse_header(data: bytes, encryption_root: bytes) -> PackCipher:
    if len(data) < HEADER_BYTES:
        raise IntegrityError("pack is shorter than its header")
    magic, version, scheme, salt = HEADER.unpack_from(data)
    if magic != PACK_MAGIC:
        raise IntegrityError("not a Lifeboat pack (bad magic)")
    if version != FORMAT_VERSION or scheme != SCHEME_SYMMETRIC:
        raise IntegrityError(f"pack has unsupported version {version} / scheme {scheme}")
    return PackCipher(encryption_root, salt)


def trailer_length(footer: bytes, pack_size: int) -> int:
    """The trailer's ciphertext length, from the last 8 bytes of a pack of ``pack_size``."""
    if len(footer) != FOOTER_BYTES:
        raise IntegrityError("pack footer is truncated")
    length, magic = FOOTER.unpack(footer)
    if magic != FOOTER_MAGIC:
        raise IntegrityError("pack footer is damaged (bad magic)")
    if length < TAG_BYTES + _TRAILER_HEAD.size or HEADER_BYTES + length + FOOTER_BYTES > pack_size:
        raise IntegrityError("pack footer gives an impossible trailer length")
    return int(length)


def read_trailer(header: bytes, trailer: bytes, pack_size: int, encryption_root: bytes) -> list[PackEntry]:
    """Decrypt and validate a pack's trailer given its header and trailer ciphertext."""
    cipher = parse_header(header, encryption_root)
    plaintext = cipher.open_trailer(header[:HEADER_BYTES], trailer)
    return decode_trailer(plaintext, body_end=pack_size - FOOTER_BYTES - len(trailer))


def read_pack_entries(data: bytes, encryption_root: bytes) -> list[PackEntry]:
    """The entries of a whole pack held in memory (verifies header, footer and trailer)."""
    size = len(data)
    if size < HEADER_BYTES + FOOTER_BYTES:
        raise IntegrityError("pack is truncated")
    length = trailer_length(data[-FOOTER_BYTES:], size)
    trailer = data[size - FOOTER_BYTES - length : size - FOOTER_BYTES]
    return read_trailer(data[:HEADER_BYTES], trailer, size, encryption_root)


def pack_hash(data: bytes | bytearray | memoryview) -> str:
    return blake3.blake3(data, max_threads=1).hexdigest()


assert ENTRY_BYTES == 1 + ID_BYTES + 12
