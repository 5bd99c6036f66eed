"""The wrappers every remote backend is opened with: read-ahead and retries keep the
contract, and read-ahead turns many small adjacent reads into few requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lifeboat.errors import StorageError, StorageNotFound, TransientStorageError
from lifeboat.storage.base import STREAM_PIECE, Backend, ObjectInfo, connections, object_lock, read_stream
from lifeboat.storage.faulty import FaultPlan, FaultyBackend
from lifeboat.storage.memory import MemoryBackend
from lifeboat.storage.readahead import ReadAheadBackend
from lifeboat.storage.readonly import ReadOnlyBackend
from lifeboat.storage.retry import RetryingBackend, RetryPolicy
from tests.storage.contract import BackendContract


class CountingBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.ranged_reads = 0

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        self.ranged_reads += 1
        return super().get_range(name, offset, length)


class TestReadAheadBackend(BackendContract):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        yield ReadAheadBackend(MemoryBackend(), window=64 * 1024, budget=256 * 1024)


class TestFullyWrappedBackend(BackendContract):
    """The stack open_backend builds for remote storage, over storage that sometimes fails."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        faulty = FaultyBackend(MemoryBackend(), FaultPlan(rate=0.05, seed=3))
        yield ReadAheadBackend(RetryingBackend(faulty, RetryPolicy(attempts=8, base_delay=0.0)), window=64 * 1024)


def test_small_adjacent_reads_are_served_from_one_window() -> None:
    inner = CountingBackend()
    payload = bytes(range(256)) * 4096  # 1 MiB
    inner.put("data/aa/pack", payload)
    backend = ReadAheadBackend(inner, window=256 * 1024)
    offset = 0
    while offset < len(payload):
        assert backend.get_range("data/aa/pack", offset, 1000) == payload[offset : offset + 1000]
        offset += 1000
    assert inner.ranged_reads <= 5  # 1049 reads, windows of 256 KiB
    assert backend.get_range("data/aa/pack", len(payload) - 10, 1000) == payload[-10:]


def test_large_reads_pass_straight_through() -> None:
    inner = CountingBackend()
    inner.put("data/bb/pack", b"x" * 500_000)
    backend = ReadAheadBackend(inner, window=100_000)
    backend.get_range("data/bb/pack", 0, 200_000)
    backend.get_range("data/bb/pack", 0, 200_000)
    assert inner.ranged_reads == 2


def test_memory_stays_within_the_budget() -> None:
    inner = CountingBackend()
    for i in range(10):
        inner.put(f"data/cc/{i}", bytes([i]) * 100_000)
    backend = ReadAheadBackend(inner, window=100_000, budget=300_000)
    for i in range(10):
        assert backend.get_range(f"data/cc/{i}", 5, 10) == bytes([i]) * 10
    assert backend._used <= 300_000
    assert backend.get_range("data/cc/0", 5, 10) == b"\x00" * 10  # evicted, read again
    assert inner.ranged_reads == 11


def test_a_deleted_object_is_not_served_from_memory() -> None:
    backend = ReadAheadBackend(MemoryBackend(), window=1024)
    backend.put("data/dd/pack", b"abcdef")
    assert backend.get_range("data/dd/pack", 0, 3) == b"abc"
    backend.delete("data/dd/pack")
    with pytest.raises(StorageNotFound):
        backend.get_range("data/dd/pack", 0, 3)


def test_wrappers_pass_connections_and_object_lock_through() -> None:
    class Locked(MemoryBackend):
        connections = 7

        @property
        def lock_period(self) -> object:
            from datetime import timedelta

            return timedelta(days=1)

        def extend_lock(self, name: str, until: object, *, to: object = None) -> bool:
            return True

    provider = Locked()
    stack = ReadAheadBackend(RetryingBackend(FaultyBackend(provider)))
    assert connections(stack) == 7
    assert connections(ReadOnlyBackend(stack)) == 7
    assert object_lock(stack) is provider
    assert object_lock(ReadAheadBackend(MemoryBackend())) is None


def test_the_last_transient_error_says_how_often_it_was_tried() -> None:
    down = FaultyBackend(MemoryBackend())
    down.down()
    backend = RetryingBackend(down, RetryPolicy(attempts=3, base_delay=0.0))
    with pytest.raises(TransientStorageError, match=r"unreachable \(injected\) \(tried 3 times\)"):
        backend.get("config")


class FailsMidStream(MemoryBackend):
    """Streams ranges in pieces; each stream fails after ``fail_after`` pieces, ``failures`` times."""

    def __init__(self, fail_after: int, failures: int) -> None:
        super().__init__()
        self.fail_after, self.failures, self.opened = fail_after, failures, 0

    def get_stream(self, name: str, offset: int, length: int) -> Iterator[bytes]:
        self.opened += 1
        data = self.get_range(name, offset, length)
        for number, start in enumerate(range(0, len(data), STREAM_PIECE)):
            if number == self.fail_after and self.failures > 0:
                self.failures -= 1
                raise TransientStorageError("get: connection reset (injected)")
            yield data[start : start + STREAM_PIECE]


def test_a_stream_that_breaks_part_way_resumes_where_it_stopped() -> None:
    payload = bytes(range(256)) * (6 * STREAM_PIECE // 256)
    inner = FailsMidStream(fail_after=1, failures=5)  # more failures than attempts, each after progress
    inner.put("data/aa/pack", payload)
    backend = RetryingBackend(inner, RetryPolicy(attempts=3, base_delay=0.0))
    assert b"".join(read_stream(backend, "data/aa/pack", 7, len(payload) - 7)) == payload[7:]
    assert inner.opened == 6


def test_a_stream_that_never_delivers_fails_after_its_attempts() -> None:
    inner = FailsMidStream(fail_after=0, failures=100)
    inner.put("data/aa/pack", b"x" * 100)
    backend = RetryingBackend(inner, RetryPolicy(attempts=3, base_delay=0.0))
    with pytest.raises(TransientStorageError, match=r"connection reset \(injected\) \(tried 3 times\)"):
        b"".join(read_stream(backend, "data/aa/pack", 0, 100))
    assert inner.opened == 3


def test_a_faulty_stream_fails_part_way_as_planned() -> None:
    faulty = FaultyBackend(MemoryBackend(), FaultPlan(rate=1.0, kinds=("io",), operations=("get_range",)))
    faulty.put("data/aa/pack", b"x" * 100)
    with pytest.raises(StorageError, match="injected"):
        b"".join(read_stream(ReadOnlyBackend(faulty), "data/aa/pack", 0, 100))


def test_listing_is_not_cached() -> None:
    inner = MemoryBackend()
    backend = ReadAheadBackend(inner)
    inner.put("index/a", b"1")
    assert [i.name for i in backend.list("index/")] == ["index/a"]
    inner.put("index/b", b"2")
    listed: list[ObjectInfo] = list(backend.list("index/"))
    assert [i.name for i in listed] == ["index/a", "index/b"]
