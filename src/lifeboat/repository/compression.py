"""Per-blob compression: zstd, skipped when it does not shrink the data.

A compressed payload starts with one codec byte (0 = stored, 1 = zstd). zstd contexts
are kept per thread: sharing one compressor between threads crashes the process.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import zstandard

from lifeboat.errors import IntegrityError

CODEC_NONE = 0
CODEC_ZSTD = 1
DEFAULT_LEVEL = 3
# zstd's window: how far back a match may reach. 512 KiB (level 3 alone would take 2 MiB) keeps a
# context at 2 MiB instead of 3.5 (each worker holds one; the input is copied through a window-sized
# buffer) and compressed 200 MiB of the bench tree's chunks to the same size (0.4772 of the bytes
# either way) in the same time (best of three: 0.431 s against 0.432 s).
WINDOW_LOG = 19
# Refuse to inflate a blob beyond this: a hostile payload must not exhaust memory.
MAX_BLOB_BYTES = 64 * 1024 * 1024


class Payload(NamedTuple):
    """A compressed blob as its codec byte and its body, kept apart: a pack writer joins them in
    a buffer it reuses, so no bytes are allocated per blob to join them (and a stored body is
    the data itself, not a copy)."""

    codec: int
    body: bytes | memoryview

    def joined(self) -> bytes:
        return bytes((self.codec,)) + self.body


class Compressor:
    """Compresses blobs at one zstd level, one context per thread."""

    def __init__(self, level: int = DEFAULT_LEVEL) -> None:
        self.level = level
        self._local = threading.local()

    def _zstd(self) -> zstandard.ZstdCompressor:
        ctx = getattr(self._local, "cctx", None)
        if ctx is None:
            params = zstandard.ZstdCompressionParameters.from_level(
                self.level, window_log=WINDOW_LOG, write_content_size=True
            )
            ctx = zstandard.ZstdCompressor(compression_params=params)
            self._local.cctx = ctx
        return ctx

    def compress(self, data: bytes | memoryview) -> bytes:
        """``codec byte + body``, whichever of stored or zstd is smaller."""
        return self.payload(data).joined()

    def payload(self, data: bytes | memoryview) -> Payload:
        """What :meth:`compress` gives, as codec and body: zstd's output, or ``data`` itself."""
        if self.level > 0 and len(data) >= 64:
            packed = self._zstd().compress(data)
            if len(packed) < len(data):
                return Payload(CODEC_ZSTD, packed)
        return Payload(CODEC_NONE, data)


_decompressors = threading.local()


def decompress(payload: bytes, expected_length: int | None = None) -> bytes:
    """Invert :meth:`Compressor.compress`; damaged input raises :class:`IntegrityError`."""
    if not payload:
        raise IntegrityError("empty blob payload")
    codec = payload[0]
    if codec == CODEC_NONE:
        data = payload[1:]
    elif codec == CODEC_ZSTD:
        dctx = getattr(_decompressors, "dctx", None)
        if dctx is None:
            dctx = zstandard.ZstdDecompressor()
            _decompressors.dctx = dctx
        limit = expected_length if expected_length is not None else MAX_BLOB_BYTES
        try:
            with memoryview(payload) as view, view[1:] as body:  # the body read in place, not copied
                data = dctx.decompress(body, max_output_size=min(limit, MAX_BLOB_BYTES))
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"blob does not decompress: {exc}") from exc
    else:
        raise IntegrityError(f"unknown compression codec {codec}")
    if expected_length is not None and len(data) != expected_length:
        raise IntegrityError(f"blob has {len(data)} bytes, the index says {expected_length}")
    return data
