"""The WAL archive, the pusher and the fetcher, without a server (fake pg_wal directories)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from lifeboat.core.events import CancelToken
from lifeboat.errors import ExitCode, IntegrityError, LifeboatError, StorageNotFound, WalConflict
from lifeboat.operations.wal_fetch import (
    BackgroundFetcher,
    FetchFailed,
    FetchResult,
    FetchSettings,
    fetch_direct,
    fetch_file,
)
from lifeboat.operations.wal_push import BackgroundPusher, PushSettings, archive_file, push_file, read_wal_payload
from lifeboat.operations.wal_worker import WalCall, run_pusher
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import PayloadBuffer, PushOutcome, WalArchive, archived_systems, encode_payload
from lifeboat.sources.postgres.spool import Spool
from tests.postgres.fakewal import SYSTEM_ID, add_ready, make_pg_wal, mark_done, segment_bytes

SEG1 = "000000010000000000000001"
SEG2 = "000000010000000000000002"
SEG3 = "000000010000000000000003"
SEG4 = "000000010000000000000004"


@pytest.fixture
def archive(memory_repo: Repository) -> WalArchive:
    return WalArchive(memory_repo, SYSTEM_ID)


def test_pushed_segment_comes_back_identical_and_is_stored_compressed(archive: WalArchive) -> None:
    data = segment_bytes(SEG1)
    assert archive.push(SEG1, data) is PushOutcome.STORED
    assert archive.fetch(SEG1) == data
    stored = archive.repo.backend.get(archive.object_name(SEG1))
    assert len(stored) < len(data) // 100
    assert SEG1.encode() not in stored  # sealed: the storage sees ciphertext only
    assert archived_systems(archive.repo) == [SYSTEM_ID]
    assert archive.object_name(SEG1) == f"wal/{SYSTEM_ID}/00000001/{SEG1}"


def test_pushing_identical_content_again_succeeds(archive: WalArchive) -> None:
    data = segment_bytes(SEG1)
    archive.push(SEG1, data)
    assert archive.push(SEG1, data) is PushOutcome.ALREADY_ARCHIVED


def test_pushing_different_content_under_an_archived_name_fails_loudly(archive: WalArchive) -> None:
    archive.push(SEG1, segment_bytes(SEG1))
    with pytest.raises(WalConflict, match="already archived with different content"):
        archive.push(SEG1, segment_bytes(SEG1, fill=b"other"))
    assert archive.fetch(SEG1) == segment_bytes(SEG1)


def test_an_object_moved_to_another_name_is_refused(archive: WalArchive) -> None:
    archive.push(SEG1, segment_bytes(SEG1))
    backend = archive.repo.backend
    backend.put(archive.object_name(SEG2), backend.get(archive.object_name(SEG1)))
    with pytest.raises(IntegrityError, match="moved or swapped"):
        archive.fetch(SEG2)


def test_a_flipped_bit_is_detected(archive: WalArchive) -> None:
    archive.push(SEG1, segment_bytes(SEG1))
    backend = archive.repo.backend
    damaged = bytearray(backend.get(archive.object_name(SEG1)))
    damaged[len(damaged) // 2] ^= 1
    backend.delete(archive.object_name(SEG1))
    backend.put(archive.object_name(SEG1), bytes(damaged))
    with pytest.raises(IntegrityError):
        archive.fetch(SEG1)


def test_a_segment_of_another_cluster_is_not_archived(archive: WalArchive, tmp_path: Path) -> None:
    pg_wal = make_pg_wal(tmp_path / "data")
    add_ready(pg_wal, SEG1, segment_bytes(SEG1, system_id="42"))
    with pytest.raises(WalConflict, match="belongs to database system 42"):
        push_file(archive, pg_wal, SEG1)
    assert not archive.exists(SEG1)


# --- pushing ------------------------------------------------------------------------------------------


class _ArrivalOrder(WalArchive):
    """The archive, noting the order in which files are handed to it (nothing else changes)."""

    def __init__(self, repo: Repository) -> None:
        super().__init__(repo, SYSTEM_ID)
        self.order: list[str] = []

    def store(self, name: str, compressed: bytes, data: bytes | memoryview) -> PushOutcome:
        self.order.append(name)
        return super().store(name, compressed, data)


def test_the_pusher_pushes_every_ready_file_history_first(memory_repo: Repository, tmp_path: Path) -> None:
    archive = _ArrivalOrder(memory_repo)
    pg_wal = make_pg_wal(tmp_path / "data")
    for name in (SEG1, SEG2, SEG3):
        add_ready(pg_wal, name)
    add_ready(pg_wal, "00000002.history", b"1\t0/3000000\tno recovery target specified\n")
    spool = Spool(tmp_path / "spool").ensure()
    # One push at a time: the order files reach the archive is the order the pusher chose, not
    # the order parallel pushes happen to finish (or the log happens to record them).
    pushed = BackgroundPusher(archive, pg_wal, spool, PushSettings(parallel=1, idle_exit=0.05)).run()
    assert pushed == 4
    assert archive.order == ["00000002.history", SEG1, SEG2, SEG3]
    assert all(spool.push_done(n) == "pushed" for n in (SEG1, SEG2, SEG3, "00000002.history"))
    assert archive.fetch("00000002.history").startswith(b"1\t0/3000000")
    log = spool.log_path.read_text()
    assert all(f"pushed {n} " in log for n in archive.order)


def test_a_call_for_a_pushed_file_returns_at_once_without_a_worker(archive: WalArchive, tmp_path: Path) -> None:
    pg_wal = make_pg_wal(tmp_path / "data")
    add_ready(pg_wal, SEG1)
    add_ready(pg_wal, SEG2)
    spool = Spool(tmp_path / "spool").ensure()
    starts: list[int] = []

    def start_worker() -> None:
        starts.append(1)
        BackgroundPusher(archive, pg_wal, spool, PushSettings(idle_exit=0.01)).run()

    first = archive_file(SEG1, pg_wal, spool, start_worker, PushSettings())
    assert first.outcome == "pushed"
    mark_done(pg_wal, SEG1)
    second = archive_file(SEG2, pg_wal, spool, start_worker, PushSettings())
    assert second.outcome == "pushed"
    assert second.waited == 0.0  # pushed ahead by the first worker
    assert len(starts) == 1


def test_a_pusher_whose_spool_was_removed_stops_without_writing_statuses(archive: WalArchive, tmp_path: Path) -> None:
    pg_wal = make_pg_wal(tmp_path / "data")
    add_ready(pg_wal, SEG1)
    spool = Spool(tmp_path / "spool").ensure()
    lock = spool.push_lock()
    assert lock.try_acquire()
    assert lock.is_current()
    (spool.out / "worker.lock").unlink()  # someone removed the spool; a new call will make a new one
    assert not lock.is_current()
    pushed = BackgroundPusher(archive, pg_wal, spool, PushSettings(idle_exit=5.0), owns_spool=lock.is_current).run()
    lock.release()
    assert pushed == 0
    assert spool.push_statuses() == {}


def test_an_unreadable_wal_file_is_reported_by_its_path(archive: WalArchive, tmp_path: Path) -> None:
    pg_wal = make_pg_wal(tmp_path / "data")
    with pytest.raises(LifeboatError, match=f"cannot read the WAL file {pg_wal / SEG1}: No such file"):
        push_file(archive, pg_wal, SEG1)


def test_a_failed_push_is_reported_to_the_waiting_call_and_nothing_is_acknowledged(
    archive: WalArchive, tmp_path: Path
) -> None:
    pg_wal = make_pg_wal(tmp_path / "data")
    add_ready(pg_wal, SEG1)
    archive.push(SEG1, segment_bytes(SEG1, fill=b"something else"))
    spool = Spool(tmp_path / "spool").ensure()

    def start_worker() -> None:
        BackgroundPusher(archive, pg_wal, spool, PushSettings(idle_exit=0.01)).run()

    with pytest.raises(LifeboatError, match="different content") as raised:
        archive_file(SEG1, pg_wal, spool, start_worker, PushSettings())
    assert raised.value.exit_code == ExitCode.INTEGRITY
    assert spool.push_done(SEG1) is None


def test_the_queue_limit_drops_wal_loudly(archive: WalArchive, tmp_path: Path) -> None:
    pg_wal = make_pg_wal(tmp_path / "data")
    for name in (SEG1, SEG2, SEG3):
        add_ready(pg_wal, name)
    spool = Spool(tmp_path / "spool").ensure()
    result = archive_file(SEG1, pg_wal, spool, lambda: None, PushSettings(queue_max=32 * 1024 * 1024))
    assert result.outcome == "dropped"
    assert result.dropped is not None
    alert = result.dropped.alert()
    assert "ALERT" in alert and "DROPPED 3 WAL files" in alert and SEG1 in alert and SEG3 in alert
    assert spool.push_done(SEG3) == "dropped"
    assert "DROPPED" in spool.log_path.read_text()
    assert not archive.exists(SEG1)


def test_below_the_queue_limit_nothing_is_dropped(archive: WalArchive, tmp_path: Path) -> None:
    pg_wal = make_pg_wal(tmp_path / "data")
    add_ready(pg_wal, SEG1)
    spool = Spool(tmp_path / "spool").ensure()

    def start_worker() -> None:
        BackgroundPusher(archive, pg_wal, spool, PushSettings(idle_exit=0.01)).run()

    result = archive_file(SEG1, pg_wal, spool, start_worker, PushSettings(queue_max=1024**3))
    assert result.outcome == "pushed" and result.dropped is None
    assert archive.fetch(SEG1) == segment_bytes(SEG1)


def test_a_reused_payload_buffer_holds_exactly_the_payload_of_each_file(tmp_path: Path) -> None:
    pg_wal = make_pg_wal(tmp_path / "data")
    for name in (SEG1, SEG2):
        add_ready(pg_wal, name)
    add_ready(pg_wal, "00000002.history", b"1\t0/3000000\tno recovery target specified\n")
    buffer = PayloadBuffer()
    for name in (SEG1, "00000002.history", SEG2):  # a segment, a small file, a segment again
        payload, content = read_wal_payload(pg_wal, name, SYSTEM_ID, buffer)
        assert bytes(content) == (pg_wal / name).read_bytes()
        assert bytes(payload) == encode_payload(name, (pg_wal / name).read_bytes())


def _bytes_read() -> int:
    """What this process has read so far (Linux's ``rchar``: the bytes of every read call)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


class _KeyAfterTheRead:
    """A call's set-up whose repository unlocks (its key derived) only once the ready segment
    was read: a pusher that waits for the key before it reads never gets one."""

    def __init__(self, repo: Repository, segment: Path) -> None:
        self.repo = repo
        self.size = segment.stat().st_size
        self.read_before = _bytes_read()

    def source(self) -> None:
        return None

    def open_repository(self) -> Repository:
        deadline = time.monotonic() + 10
        while _bytes_read() - self.read_before < self.size:
            if time.monotonic() > deadline:
                raise LifeboatError("the pusher read no WAL while the key was derived")
            time.sleep(0.005)
        return self.repo


def test_the_pusher_reads_and_compresses_while_the_key_is_derived(memory_repo: Repository, tmp_path: Path) -> None:
    pg_wal = make_pg_wal(tmp_path / "data")
    add_ready(pg_wal, SEG1)
    call = WalCall(spool=str(tmp_path / "spool"), data_directory=str(pg_wal.parent))
    spool = Spool(call.spool).ensure()
    setup = _KeyAfterTheRead(memory_repo, pg_wal / SEG1)
    stop = CancelToken()
    pusher = threading.Thread(target=lambda: run_pusher(call, SEG1, pg_wal, setup, cancel=stop), daemon=True)
    pusher.start()
    deadline = time.monotonic() + 30
    while spool.push_done(SEG1) is None and spool.push_failure(SEG1) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.cancel("the test is over")
    pusher.join(30)
    assert spool.push_failure(SEG1) is None
    assert spool.push_done(SEG1) == "pushed"
    assert WalArchive(memory_repo, SYSTEM_ID).fetch(SEG1) == segment_bytes(SEG1)


def test_a_pusher_that_cannot_open_the_repository_fails_the_waiting_call(
    memory_repo: Repository, tmp_path: Path
) -> None:
    pg_wal = make_pg_wal(tmp_path / "data")
    add_ready(pg_wal, "00000002.history", b"1\t0/3000000\tno recovery target specified\n")
    add_ready(pg_wal, SEG1)
    call = WalCall(spool=str(tmp_path / "spool"), data_directory=str(pg_wal.parent))
    spool = Spool(call.spool).ensure()

    class Locked(_KeyAfterTheRead):
        def open_repository(self) -> Repository:
            raise LifeboatError("wrong passphrase", hint="check LIFEBOAT_PASSWORD_FILE")

    # The call waits for SEG1; the pusher met the failure on other files first, whichever they were.
    run_pusher(call, SEG1, pg_wal, Locked(memory_repo, pg_wal / SEG1))
    failure = spool.push_failure(SEG1)
    assert failure is not None and failure.message == "wrong passphrase"
    assert spool.push_done(SEG1) is None


# --- fetching ------------------------------------------------------------------------------------------


def _serve(archive: WalArchive, spool: Spool) -> threading.Thread:
    """Start a fetcher as the real worker process runs one: holding the spool's fetch lock
    (taken before the caller goes on, so it never starts a second worker) until it exits."""
    settings = FetchSettings(prefetch=2, idle_exit=0.3, poll=0.002, gap_recheck=0.01)
    fetcher = BackgroundFetcher(archive, spool, settings, segment_size=16 * 1024 * 1024)
    lock = spool.fetch_lock()
    assert lock.try_acquire(), "a fetcher is already running"

    def run() -> None:
        try:
            fetcher.run()
        finally:
            lock.release()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_fetch_restores_the_file_and_prefetches_the_next_segments(archive: WalArchive, tmp_path: Path) -> None:
    for name in (SEG1, SEG2, SEG3, SEG4):
        archive.push(name, segment_bytes(name))
    spool = Spool(tmp_path / "spool").ensure()
    workers: list[threading.Thread] = []
    settings = FetchSettings(timeout=10)
    target = tmp_path / "RECOVERYXLOG"
    assert fetch_file(SEG1, target, spool, lambda: workers.append(_serve(archive, spool)), settings).found
    assert target.read_bytes() == segment_bytes(SEG1)
    deadline = time.monotonic() + 10  # the fetches run in parallel and finish in any order
    while not (spool.prefetched(SEG2) and spool.prefetched(SEG3)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert spool.prefetched(SEG2) and spool.prefetched(SEG3)  # fetched while "PostgreSQL replays"
    assert fetch_file(SEG2, target, spool, lambda: workers.append(_serve(archive, spool)), settings).found
    assert target.read_bytes() == segment_bytes(SEG2)
    assert len(workers) == 1


def test_fetching_past_the_end_of_the_archive_says_not_found(archive: WalArchive, tmp_path: Path) -> None:
    archive.push(SEG1, segment_bytes(SEG1))
    spool = Spool(tmp_path / "spool").ensure()
    start = lambda: _serve(archive, spool)  # noqa: E731
    assert fetch_file(SEG2, tmp_path / "x", spool, start, FetchSettings(timeout=10)) == FetchResult(False)
    assert fetch_file("00000002.history", tmp_path / "x", spool, start, FetchSettings(timeout=10)) == FetchResult(False)
    assert not (tmp_path / "x").exists()


def test_a_gap_in_the_archive_is_not_found_with_a_note_naming_it(archive: WalArchive, tmp_path: Path) -> None:
    for name in (SEG1, SEG3):
        archive.push(name, segment_bytes(name))
    spool = Spool(tmp_path / "spool").ensure()
    result = fetch_file(SEG2, tmp_path / "x", spool, lambda: _serve(archive, spool), FetchSettings(timeout=10))
    assert not result.found
    assert f"{SEG2} is missing" in result.note and "later segments" in result.note
    direct = fetch_direct(archive, SEG2, tmp_path / "x")
    assert not direct.found and SEG2 in direct.note


def test_a_damaged_segment_fails_the_fetch(archive: WalArchive, tmp_path: Path) -> None:
    archive.push(SEG1, segment_bytes(SEG1))
    backend = archive.repo.backend
    backend.put(archive.object_name(SEG2), backend.get(archive.object_name(SEG1)))
    spool = Spool(tmp_path / "spool").ensure()
    with pytest.raises(FetchFailed, match="moved or swapped"):
        fetch_file(SEG2, tmp_path / "x", spool, lambda: _serve(archive, spool), FetchSettings(timeout=10))


def test_fetch_direct_restores_and_reports_absence(archive: WalArchive, tmp_path: Path) -> None:
    archive.push(SEG1, segment_bytes(SEG1))
    assert fetch_direct(archive, SEG1, tmp_path / "a").found
    assert (tmp_path / "a").read_bytes() == segment_bytes(SEG1)
    assert fetch_direct(archive, SEG2, tmp_path / "b") == FetchResult(False)
    with pytest.raises(StorageNotFound):
        archive.fetch(SEG2)
