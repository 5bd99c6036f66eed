"""Random tokens and constant-time comparison without OpenSSL's ``libcrypto``.

The standard library's ``secrets`` imports ``hmac``, and ``hmac`` imports ``hashlib``, whose
``_hashlib`` extension loads the system's ``libcrypto``: 4 MiB of resident memory in every
process that imports them, though Lifeboat hashes with BLAKE3 and encrypts with
``cryptography`` (its own OpenSSL, loaded anyway). ``secrets.token_bytes`` is ``os.urandom``,
and ``hmac.compare_digest`` is ``_operator``'s when ``_hashlib`` is absent: the same calls
here, so the commands that move data keep those 4 MiB (tests/unit/test_tokens.py checks that a
files backup and restore never load ``_hashlib``).
"""

from __future__ import annotations

import os
from _operator import _compare_digest
from typing import AnyStr


def token_bytes(n: int) -> bytes:
    """``n`` random bytes from the operating system's generator (what ``secrets`` returns)."""
    return os.urandom(n)


def token_hex(n: int) -> str:
    """``n`` random bytes as ``2 * n`` hexadecimal digits."""
    return os.urandom(n).hex()


def same_digest(a: AnyStr, b: AnyStr) -> bool:
    """``a == b`` in time that does not depend on where they differ (``hmac.compare_digest``;
    strings must be ASCII)."""
    return _compare_digest(a, b)


__all__ = ["same_digest", "token_bytes", "token_hex"]
