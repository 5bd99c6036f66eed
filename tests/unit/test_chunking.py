"""Content-defined chunking: the cuts are pyfastcdc's stream chunker's, whatever the reads
return, and the chunking buffer is handed from one stream to the next."""

from __future__ import annotations

import io
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyfastcdc import FastCDC

from lifeboat.app.runtime import release_memory
from lifeboat.core import chunking
from lifeboat.core.chunking import Chunker

SMALL = Chunker(4 * 1024, 16 * 1024, 64 * 1024, seed=12345)


class _ShortReads(io.RawIOBase):
    """A stream that returns at most a few bytes per read, like a pipe."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data = memoryview(data)
        self._sizes = sizes
        self._at = 0
        self._turn = 0

    def readable(self) -> bool:
        return True

    def readinto(self, into: memoryview) -> int:  # type: ignore[override]
        n = min(len(into), self._sizes[self._turn % len(self._sizes)], len(self._data) - self._at)
        self._turn += 1
        into[:n] = self._data[self._at : self._at + n]
        self._at += n
        return n


def _mixed(rng: random.Random, size: int) -> bytes:
    """Random runs and repeated runs: content with boundaries of every kind (max-size cuts too)."""
    parts: list[bytes] = []
    while sum(map(len, parts)) < size:
        run = rng.randrange(1, 200_000)
        parts.append(rng.randbytes(run) if rng.random() < 0.6 else bytes([rng.randrange(256)]) * run)
    return b"".join(parts)[:size]


def _reference(chunker: Chunker, data: bytes) -> list[bytes]:
    cdc = FastCDC(chunker.avg_size, min_size=chunker.min_size, max_size=chunker.max_size, seed=chunker.seed)
    return [bytes(c.data) for c in cdc.cut_stream(io.BytesIO(data))]


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 700_000), st.lists(st.integers(1, 300_000), min_size=1, max_size=5))
def test_the_cuts_are_pyfastcdcs_whatever_the_reads_return(seed: int, size: int, reads: list[int]) -> None:
    data = _mixed(random.Random(seed), size)
    cut = [bytes(c) for c in SMALL.chunks(_ShortReads(data, reads))]  # type: ignore[arg-type]
    assert cut == _reference(SMALL, data)


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 128 * 1024, 128 * 1024 + 1, 3 * 64 * 1024 - 1])
def test_sizes_at_the_buffers_edges_cut_as_pyfastcdc_does(size: int) -> None:
    for fill in (b"\0", None):
        data = fill * size if fill else random.Random(size).randbytes(size)
        assert [bytes(c) for c in SMALL.chunks(io.BytesIO(data))] == _reference(SMALL, data)


def test_a_buffer_serves_the_next_stream_also_when_a_stream_is_left_half_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[int] = []
    real = bytearray

    def counting(size: int) -> bytearray:
        made.append(size)
        return real(size)

    monkeypatch.setattr(chunking, "_BUFFERS", chunking._BufferPool(keep=4))
    monkeypatch.setattr(chunking, "bytearray", counting, raising=False)
    data = random.Random(1).randbytes(500_000)
    for _ in range(5):
        assert b"".join(bytes(c) for c in SMALL.chunks(io.BytesIO(data))) == data
    left = SMALL.chunks(io.BytesIO(data))
    next(left)
    left.close()  # a reader that failed half-way gives its buffer back too
    assert b"".join(bytes(c) for c in SMALL.chunks(io.BytesIO(data))) == data
    assert made == [SMALL.max_size + SMALL.avg_size]
    release_memory()  # the daemon between runs: the kept buffer goes
    assert b"".join(bytes(c) for c in SMALL.chunks(io.BytesIO(data))) == data
    assert made == [SMALL.max_size + SMALL.avg_size] * 2


def test_the_default_chunker_cuts_a_large_stream_as_pyfastcdc_does() -> None:
    from lifeboat.repository.header import ChunkerParams

    params = ChunkerParams()
    chunker = Chunker(params.min_size, params.avg_size, params.max_size, seed=987654321)
    rng = random.Random(5)
    data = _mixed(rng, 12 << 20) + b"\x07" * (5 << 20) + _mixed(rng, 8 << 20)  # a run cut at the largest size
    cut = [bytes(c) for c in chunker.chunks(_ShortReads(data, [1 << 20, 65536, 3 << 20]))]  # type: ignore[arg-type]
    assert cut == _reference(chunker, data)
    assert any(len(c) == params.max_size for c in cut) and len(cut) > 20


def test_a_refill_moves_the_rest_of_the_buffer_without_a_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    # After a refill the bytes not yet cut move to the buffer's front; when they are longer than
    # what was cut the two overlap, and a temporary copy of up to a largest chunk was made.
    import tracemalloc

    monkeypatch.setattr(chunking, "_BUFFERS", chunking._BufferPool(keep=4))  # not one other tests filled
    data = random.Random(8).randbytes(4 * 1024 * 1024)
    assert b"".join(bytes(c) for c in SMALL.chunks(io.BytesIO(data))) == data  # the buffer, leased and kept
    tracemalloc.start()
    try:
        for chunk in SMALL.chunks(io.BytesIO(data)):
            del chunk
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < SMALL.max_size // 4, f"chunking allocated {peak} bytes at once"


def test_an_abandoned_stream_gives_its_buffer_back_even_inside_the_pools_lock() -> None:
    """The garbage collector may finalize an abandoned chunker on any thread at any allocation,
    one that holds the buffer pool's lock included: giving the buffer back there must not
    deadlock (a daemon's backup once hung for good after an earlier one failed mid-file)."""
    import io
    import threading

    from lifeboat.core import chunking

    chunker = chunking.Chunker(64 * 1024, 128 * 1024, 256 * 1024)
    stream = chunker.chunks(io.BytesIO(random.randbytes(1024 * 1024)), 1024 * 1024)
    next(stream)  # holds a leased buffer

    def finalize_inside_the_lock() -> None:
        with chunking._BUFFERS._lock:
            stream.close()  # what the collector does to an abandoned generator

    thread = threading.Thread(target=finalize_inside_the_lock, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "giving the buffer back inside the pool's lock deadlocked"
