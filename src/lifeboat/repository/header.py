"""The format header (``config``): the only plaintext object besides the key files.

It names the format and its version, the repository id, and the parameters every
writer must share (chunk sizes, pack size, compression level). A MAC keyed from the
master key protects it: a tampered header is refused once the repository is unlocked.

Damage is told apart from "no repository here" and from "a newer format": bytes that are
not a header at all are :class:`RepositoryNotFound` (the caller decides, from the key
files beside it, whether a repository was there); a header with a version this program does
not know is :class:`UnsupportedFormat` unless the rest of it verifies as version 1 once
the key is known (then its version field is what is damaged); anything else malformed is
:class:`DamagedHeader`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import blake3

from lifeboat.core.tokens import same_digest
from lifeboat.errors import DamagedHeader, RepositoryNotFound, UnsupportedFormat

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
            raise DamagedHeader("the format header 'config' is damaged: chunker sizes out of range")
        if not (1024 <= self.max_size <= 1 << 24 and self.min_size <= self.avg_size <= self.max_size):
            raise DamagedHeader("the format header 'config' is damaged: chunker sizes out of order")


@dataclass(frozen=True)
class RepositoryHeader:
    """The decoded format header."""

    repository_id: str
    created: str
    chunker: ChunkerParams = field(default_factory=ChunkerParams)
    pack_size: int = 32 * 1024 * 1024
    compression_level: int = 3
    block_size: int = 128 * 1024  # fixed, page-aligned chunks (PostgreSQL relation files)
    # The version the stored header states; a reader of version 1 opens only version 1, but
    # keeps what it read so that it can tell a newer format from a damaged version field.
    stated_version: int = field(default=FORMAT_VERSION, compare=False)

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
        """The header and its stored MAC (checked later, once the key is known).

        A header stating another version is returned (with ``stated_version`` set) only when
        the rest of it reads as version 1: :meth:`check_version` decides, with the key,
        whether it is damaged or truly newer."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise RepositoryNotFound("the 'config' object is not a Lifeboat format header") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise RepositoryNotFound("the 'config' object is not a Lifeboat format header")
        version = doc.get("version")
        if type(version) is not int or version < 1:
            raise DamagedHeader(f"the format header 'config' is damaged: its version field is {version!r}")
        try:
            header, mac = cls._fields(doc, version)
        except DamagedHeader:
            if version != FORMAT_VERSION:
                raise _unsupported(version) from None
            raise
        return header, mac

    @classmethod
    def _fields(cls, doc: dict[str, Any], version: int) -> tuple[RepositoryHeader, str]:
        try:
            chunker = ChunkerParams(**{k: int(v) for k, v in dict(doc["chunker"]).items()})
            header = cls(
                repository_id=str(doc["repository_id"]),
                created=str(doc["created"]),
                chunker=chunker,
                pack_size=int(doc["pack_size"]),
                compression_level=int(doc["compression_level"]),
                block_size=int(doc["block_size"]),
                stated_version=version,
            )
            mac = str(doc["mac"])
        except KeyError as exc:
            raise DamagedHeader(f"the format header 'config' is damaged: it lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError):
            raise DamagedHeader("the format header 'config' is damaged: a field has the wrong type") from None
        chunker.validate()
        if not (1 << 20 <= header.pack_size <= 1 << 30):
            raise DamagedHeader("the format header 'config' is damaged: pack size out of range")
        if not (0 <= header.compression_level <= 22):
            raise DamagedHeader("the format header 'config' is damaged: compression level out of range")
        if header.block_size % 8192 or not (8192 <= header.block_size <= 1 << 24):
            raise DamagedHeader("the format header 'config' is damaged: block size is not a multiple of 8 KiB")
        return header, mac

    def verify(self, stored_mac: str, key: bytes) -> None:
        """Check the MAC (and the version: see :meth:`decode`) with the header MAC key."""
        verified = same_digest(self.mac(key), stored_mac)
        if self.stated_version != FORMAT_VERSION:
            if verified:
                raise DamagedHeader(
                    f"the format header 'config' is damaged: its version field says {self.stated_version}, "
                    f"but the header verifies as version {FORMAT_VERSION}"
                )
            raise _unsupported(self.stated_version)
        if not verified:
            raise DamagedHeader("the format header 'config' fails its MAC check (tampered or damaged)")

    def check_version(self) -> None:
        """Refuse a header stating another version, when it cannot be verified (no key opens)."""
        if self.stated_version != FORMAT_VERSION:
            raise _unsupported(self.stated_version)


def mentions_format(data: bytes) -> bool:
    """Whether ``data`` names the format: a header that does not parse but says this is a
    Lifeboat repository is a damaged header, not something else."""
    return FORMAT_NAME.encode() in data


def _unsupported(version: int) -> UnsupportedFormat:
    return UnsupportedFormat(
        f"unsupported format: the repository states format version {version}; "
        f"this Lifeboat reads version {FORMAT_VERSION}",
        hint="upgrade Lifeboat to a version that reads it; if no newer Lifeboat ever wrote to this repository, "
        "its 'config' is damaged: restore it from a copy or backup of the repository's storage",
    )
