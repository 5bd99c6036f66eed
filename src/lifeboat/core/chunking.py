"""How byte streams are cut into blobs.

Files and dumps use content-defined chunking (FastCDC 2020), seeded per repository so
chunk boundaries do not reveal content to someone without the key; an insertion moves
only the boundaries around it. PostgreSQL relation files use fixed, page-aligned blocks
(:func:`fixed_chunks`), because their pages change in place.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast


@dataclass(frozen=True)
class Chunker:
    """A content-defined chunker with fixed parameters and seed."""

    min_size: int
    avg_size: int
    max_size: int
    seed: int = 0

    def chunks(self, stream: BinaryIO, size_hint: int = -1) -> Generator[memoryview, None, None]:
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
        readinto = _readinto_of(source)
        # The buffer holds the longest chunk and an average one more: a refill moves only the
        # part of a chunk the last read cut short (half a chunk on average) to the front.
        with _BUFFERS.lease(self.max_size + self.avg_size) as buffer:
            view = memoryview(buffer)
            filled, end = 0, False
            while True:
                while not end and filled < len(view):
                    n = readinto(view[filled:])
                    if not n:
                        end = True
                    filled += n or 0
                start = 0
                for chunk in cdc.cut_buf(view[:filled]):
                    # A cut before the end of the bytes read, or at the largest size, is where
                    # more bytes would put it too (the gear hash looks only at the chunk's own
                    # bytes): the cut pyfastcdc's stream chunker makes. A chunk that ends with
                    # the buffer may end there only because the read did: read on first.
                    if not (end or chunk.length < filled - start or chunk.length == self.max_size):
                        break
                    yield chunk.data
                    start += chunk.length
                if end:
                    return
                rest = filled - start  # less than max_size
                view[:rest] = view[start:filled]  # memoryview assignment moves overlapping bytes (memmove)
                filled = rest

    def chunk_bytes(self, data: bytes | memoryview) -> Iterator[memoryview]:
        from pyfastcdc import FastCDC

        cdc = FastCDC(self.avg_size, min_size=self.min_size, max_size=self.max_size, seed=self.seed)
        for chunk in cdc.cut_buf(data):
            yield chunk.data


class _BufferPool:
    """Chunking buffers handed from one stream to the next: a backup reads thousands of files,
    and a fresh zeroed buffer of twice the largest chunk for each one churns the allocator
    (the process's RSS grew with every file read concurrently)."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._free: list[bytearray] = []
        # Reentrant: the garbage collector may finalize an abandoned stream's chunker (its lease
        # giving the buffer back) on whatever thread allocates, this one too, inside the lock.
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def lease(self, size: int) -> Iterator[bytearray]:
        with self._lock:
            found = next((b for b in list(self._free) if len(b) == size), None)
            if found is not None:
                self._free.remove(found)
        buffer = found if found is not None else bytearray(size)
        try:
            yield buffer
        finally:
            with self._lock:
                if len(self._free) < self._keep:
                    self._free.append(buffer)

    def drop(self) -> None:
        """Let the kept buffers go (a long-running process between its jobs)."""
        with self._lock:
            self._free.clear()


# As many buffers are kept as streams are usually chunked at once (a files backup's readers).
_BUFFERS = _BufferPool(keep=4)


def drop_buffers() -> None:
    """Free the chunking buffers kept for the next stream (the daemon, after each run)."""
    _BUFFERS.drop()


def _readinto_of(stream: BinaryIO | _Prefixed) -> Callable[[memoryview], int | None]:
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return cast("Callable[[memoryview], int | None]", readinto)

    def by_read(into: memoryview) -> int:
        data = stream.read(len(into))
        into[: len(data)] = data
        return len(data)

    return by_read


def fixed_chunks(stream: BinaryIO, block_size: int) -> Generator[bytes, None, None]:
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
