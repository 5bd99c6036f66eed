"""The format header (``config``): the only plaintext object besides the key files.

It names the format and its version, the repository id, and the parameters every
writer must share (chunk sizes, pack size, compression level). A MAC keyed from the
master key protects it: a tampered header is refused once the repository is unlocked.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import blake3

from lifeboat.errors import IntegrityError, RepositoryNotFound, UnsupportedFormat

FORMAT_NAME = "lifeboat-repository"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ChunkerParams:
    """Content-defined chunking bounds (FastCDC 2020), in bytes."""

    min_size: int = 256 * 1024
    avg_size: int = 512 * 1024
    max_size: int = 2 * 1024 * 1024

    def validate(self) -> None:
        if not (64 <= self.min_size <= 1 << 20 and 256 <= self.avg_size <= 1 << 22):
            raise IntegrityError("format header: chunker sizes out of range")
        if not (1024 <= self.max_size <= 1 << 24 and self.min_size <= self.avg_size <= self.max_size):
            raise IntegrityError("format header: chunker sizes out of order")


@dataclass(frozen=True)
class RepositoryHeader:
    """The decoded format header."""

    repository_id: str
    created: str
    chunker: ChunkerParams = field(default_factory=ChunkerParams)
    pack_size: int = 32 * 1024 * 1024
    compression_level: int = 3
    block_size: int = 128 * 1024  # fixed, page-aligned chunks (PostgreSQL relation files)

    def _body(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "repository_id": self.repository_id,
            "created": self.created,
            "chunker": asdict(self.chunker),
            "pack_size": self.pack_size,
            "compression_level": self.compression_level,
            "block_size": self.block_size,
        }

    def mac(self, key: bytes) -> str:
        canonical = json.dumps(self._body(), sort_keys=True, separators=(",", ":")).encode()
        return blake3.blake3(canonical, key=key).hexdigest()

    def encode(self, mac_key: bytes) -> bytes:
        doc = self._body()
        doc["mac"] = self.mac(mac_key)
        return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> tuple[RepositoryHeader, str]:
        """The header and its stored MAC (checked later, once the key is known)."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise RepositoryNotFound("the 'config' object is not a Lifeboat format header") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise RepositoryNotFound("the 'config' object is not a Lifeboat format header")
        version = doc.get("version")
        if version != FORMAT_VERSION:
            raise UnsupportedFormat(f"repository format version {version!r}; this Lifeboat reads version 1")
        try:
            chunker = ChunkerParams(**{k: int(v) for k, v in dict(doc["chunker"]).items()})
            header = cls(
                repository_id=str(doc["repository_id"]),
                created=str(doc["created"]),
                chunker=chunker,
                pack_size=int(doc["pack_size"]),
                compression_level=int(doc["compression_level"]),
                block_size=int(doc["block_size"]),
            )
            mac = str(doc["mac"])
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"format header is malformed: {exc}") from exc
        chunker.validate()
        if not (1 << 20 <= header.pack_size <= 1 << 30):
            raise IntegrityError("format header: pack size out of range")
        if not (0 <= header.compression_level <= 22):
            raise IntegrityError("format header: compression level out of range")
        if header.block_size % 8192 or not (8192 <= header.block_size <= 1 << 24):
            raise IntegrityError("format header: block size must be a multiple of 8 KiB")
        return header, mac

    def verify(self, stored_mac: str, key: bytes) -> None:
        if not hmac.compare_digest(self.mac(key), stored_mac):
            raise IntegrityError("format header fails its MAC check (tampered or damaged)")
