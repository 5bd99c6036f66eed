"""How byte streams are cut into blobs.

Files and dumps use content-defined chunking (FastCDC 2020), seeded per repository so
chunk boundaries do not reveal content to someone without the key; an insertion moves
only the boundaries around it. PostgreSQL relation files use fixed, page-aligned blocks
(:func:`fixed_chunks`), because their pages change in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO


@dataclass(frozen=True)
class Chunker:
    """A content-defined chunker with fixed parameters and seed."""

    min_size: int
    avg_size: int
    max_size: int
    seed: int = 0

    def chunks(self, stream: BinaryIO, size_hint: int = -1) -> Iterator[memoryview]:
        """Yield chunks of ``stream``; each view is valid only until the next is yielded.

        A stream expected to be shorter than the minimum chunk (``size_hint``) is one chunk
        whatever the algorithm, so it is read at once without setting up the chunker.
        """
        source: BinaryIO | _Prefixed = stream
        if 0 <= size_hint < self.min_size:
            # One byte past the expected size says whether the file grew since it was measured.
            head = _read_up_to(stream, size_hint + 1)
            if len(head) <= size_hint:
                if head:
                    yield memoryview(head)
                return
            source = _Prefixed(head, stream)  # it grew since it was measured
        from pyfastcdc import FastCDC

        cdc = FastCDC(self.avg_size, min_size=self.min_size, max_size=self.max_size, seed=self.seed)
        for chunk in cdc.cut_stream(source):
            yield chunk.data

    def chunk_bytes(self, data: bytes | memoryview) -> Iterator[memoryview]:
        from pyfastcdc import FastCDC

        cdc = FastCDC(self.avg_size, min_size=self.min_size, max_size=self.max_size, seed=self.seed)
        for chunk in cdc.cut_buf(data):
            yield chunk.data


def fixed_chunks(stream: BinaryIO, block_size: int) -> Iterator[bytes]:
    """Yield ``block_size`` blocks (the last may be shorter)."""
    while True:
        block = stream.read(block_size)
        if not block:
            return
        yield block


def _read_up_to(stream: BinaryIO, limit: int) -> bytes:
    parts: list[bytes] = []
    remaining = limit
    while remaining > 0:
        part = stream.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


class _Prefixed:
    """``head`` followed by the rest of ``stream``, readable with ``read(n)``."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, n: int) -> bytes:
        if self._head:
            part, self._head = self._head[:n], self._head[n:]
            return part
        return self._stream.read(n)
