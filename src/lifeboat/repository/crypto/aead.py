"""Authenticated encryption of packs and stand-alone objects (the only cipher code).

Keys never repeat, however many objects a repository holds: every pack and every
stand-alone object carries 16 random bytes (its *salt*) from which its own AES-256-GCM
key is derived (keyed BLAKE3 of the salt under the encryption root). Inside a pack, the
nonce of a blob is its byte offset in the pack, unique by construction; the trailer uses
a nonce no offset can reach. A stand-alone object is encrypted once under its own key
with a zero nonce. The AAD binds every ciphertext to its context: a blob to its type and
id, a trailer and an object to their headers, so nothing can be swapped undetected.

The ``scheme`` byte in every header is 1 (symmetric, keys derived from the master key).
It leaves room for scheme 2, public-key recipients whose writers cannot read.
"""

from __future__ import annotations

import struct
from enum import IntEnum

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.ciphers.modes import GCM

from lifeboat.core.tokens import token_bytes
from lifeboat.errors import IntegrityError

SALT_BYTES = 16
TAG_BYTES = 16
SCHEME_SYMMETRIC = 1
FORMAT_VERSION = 1

OBJECT_MAGIC = b"LBO"
OBJECT_HEADER = struct.Struct("<3sBBB2x16s")  # magic, version, kind, scheme, salt
OBJECT_HEADER_BYTES = OBJECT_HEADER.size  # 24

TRAILER_NONCE = (1 << 95).to_bytes(12, "big")
_ZERO_NONCE = bytes(12)


class ObjectKind(IntEnum):
    """What a stand-alone encrypted object is; bound into its AAD."""

    INDEX = 1
    SNAPSHOT = 2
    LOCK = 3
    WAL = 4
    MANIFEST = 5
    RECORD = 6  # a check's result (a verify, a drill): core/records.py
    BUNDLE = 7  # snapshot objects gathered in one: repository/bundle.py


def _subkey(root: bytes, purpose: bytes, salt: bytes) -> bytes:
    return blake3.blake3(purpose + salt, key=root).digest(32)


def offset_nonce(offset: int) -> bytes:
    return offset.to_bytes(12, "big")


class PackCipher:
    """Encrypts the blobs and the trailer of one pack under the pack's own key."""

    def __init__(self, root: bytes, salt: bytes) -> None:
        if len(salt) != SALT_BYTES:
            raise IntegrityError("pack header: malformed salt")
        self.salt = salt
        self._key = _subkey(root, b"pack", salt)
        self._aead = AESGCM(self._key)

    @classmethod
    def fresh(cls, root: bytes) -> PackCipher:
        return cls(root, token_bytes(SALT_BYTES))

    @staticmethod
    def blob_aad(blob_type: int, blob_id: bytes) -> bytes:
        return bytes((blob_type,)) + blob_id

    def seal_blob_into(
        self, offset: int, blob_type: int, blob_id: bytes, codec: int, body: bytes | memoryview, out: bytearray
    ) -> int:
        """Encrypt the plaintext ``codec byte + body`` into the start of ``out`` (grown when too
        short), the tag after it; returns the ciphertext's length. The two parts go through one
        GCM stream, so they are never joined in memory: the ciphertext is what one
        ``AESGCM.encrypt`` of the joined bytes gives."""
        length = 1 + len(body) + TAG_BYTES
        if len(out) < length:
            out.extend(bytes(length - len(out)))
        encryptor = Cipher(AES(self._key), GCM(offset_nonce(offset))).encryptor()
        encryptor.authenticate_additional_data(self.blob_aad(blob_type, blob_id))
        with memoryview(out) as view:
            # update_into wants room for a block more than it writes; GCM writes each byte at once
            written = encryptor.update_into(bytes((codec,)), view[:TAG_BYTES])
            written += encryptor.update_into(body, view[1:length])
            encryptor.finalize()
            if written != length - TAG_BYTES:  # pragma: no cover - GCM is a stream cipher
                raise RuntimeError("AES-GCM held back bytes of a blob")
            view[length - TAG_BYTES : length] = encryptor.tag
        return length

    def open_blob(self, offset: int, blob_type: int, blob_id: bytes, ciphertext: bytes | memoryview) -> bytes:
        try:
            return self._aead.decrypt(offset_nonce(offset), ciphertext, self.blob_aad(blob_type, blob_id))
        except InvalidTag:
            raise IntegrityError(
                f"blob {blob_id.hex()[:16]} at offset {offset} fails authentication (damaged or tampered)"
            ) from None

    def seal_trailer(self, header: bytes, plaintext: bytes) -> bytes:
        return self._aead.encrypt(TRAILER_NONCE, plaintext, header)

    def open_trailer(self, header: bytes, ciphertext: bytes) -> bytes:
        try:
            return self._aead.decrypt(TRAILER_NONCE, ciphertext, header)
        except InvalidTag:
            raise IntegrityError("pack trailer fails authentication (damaged or tampered)") from None


class ObjectCipher:
    """Seals and opens stand-alone objects (index files, snapshots, locks, WAL, records)."""

    def __init__(self, root: bytes) -> None:
        self._root = root

    def seal(self, kind: ObjectKind, plaintext: bytes) -> bytes:
        salt = token_bytes(SALT_BYTES)
        header = OBJECT_HEADER.pack(OBJECT_MAGIC, FORMAT_VERSION, kind, SCHEME_SYMMETRIC, salt)
        aead = AESGCM(_subkey(self._root, b"object" + bytes((kind,)), salt))
        return header + aead.encrypt(_ZERO_NONCE, plaintext, header)

    def open(self, kind: ObjectKind, data: bytes, *, what: str) -> bytes:
        if len(data) < OBJECT_HEADER_BYTES + TAG_BYTES:
            raise IntegrityError(f"{what}: truncated ({len(data)} bytes)")
        header = data[:OBJECT_HEADER_BYTES]
        magic, version, found_kind, scheme, salt = OBJECT_HEADER.unpack(header)
        if magic != OBJECT_MAGIC:
            raise IntegrityError(f"{what}: not a Lifeboat object")
        if version != FORMAT_VERSION or scheme != SCHEME_SYMMETRIC:
            raise IntegrityError(f"{what}: unsupported object version {version} / scheme {scheme}")
        if found_kind != kind:
            raise IntegrityError(f"{what}: holds a {_kind_name(found_kind)}, expected a {kind.name.lower()}")
        aead = AESGCM(_subkey(self._root, b"object" + bytes((kind,)), salt))
        try:
            return aead.decrypt(_ZERO_NONCE, data[OBJECT_HEADER_BYTES:], header)
        except InvalidTag:
            raise IntegrityError(f"{what}: fails authentication (damaged, tampered or another key)") from None


def _kind_name(kind: int) -> str:
    try:
        return ObjectKind(kind).name.lower()
    except ValueError:
        return f"kind {kind}"
