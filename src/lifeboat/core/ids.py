"""Identifiers: blob ids (keyed BLAKE3 of content), object ids and their hex forms."""

from __future__ import annotations

from enum import IntEnum

ID_BYTES = 32
ID_HEX = 2 * ID_BYTES


class BlobType(IntEnum):
    """What a blob holds. Data and tree blobs go into separate packs."""

    DATA = 0
    TREE = 1


def is_hex_id(text: str) -> bool:
    """True for a full, lower-case 64-digit hex id."""
    return len(text) == ID_HEX and all(c in "0123456789abcdef" for c in text)


def parse_hex_id(text: str, what: str = "id") -> bytes:
    """The 32 bytes of a full hex id; :class:`ValueError` for anything else."""
    if not is_hex_id(text):
        raise ValueError(f"{what} {text!r} is not a 64-digit hex id")
    return bytes.fromhex(text)


def short(object_id: str | bytes) -> str:
    """The 8-digit prefix users see."""
    text = object_id.hex() if isinstance(object_id, bytes) else object_id
    return text[:8]
