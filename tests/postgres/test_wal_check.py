"""Reading archived WAL back (fake segments with real page headers, no server): what the
archive must hold, what each file must be, what the restore pre-check refuses, and what
wal-fetch tells PostgreSQL about a damaged file."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.core.basebackup import BaseBackup
from lifeboat.core.wal import Lsn, TimelineHistory, WalSegment
from lifeboat.errors import IntegrityError, StoragePermissionDenied, WalConflict, WalDamaged
from lifeboat.operations.wal_fetch import BackgroundFetcher, FetchSettings, fetch_file
from lifeboat.operations.wal_push import read_wal_file
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive
from lifeboat.repository.walcheck import WalChecker, WalIssue
from lifeboat.repository.walverify import verify_file, verify_recovery_wal
from lifeboat.sources.postgres.recoveryconf import recovering_to_a_target
from lifeboat.sources.postgres.spool import Spool
from lifeboat.storage.base import Backend
from lifeboat.storage.wrapper import BackendWrapper
from tests.conftest import Cli
from tests.postgres.fakewal import SYSTEM_ID, add_ready, make_pg_wal, segment_bytes

MIB16 = 16 * 1024 * 1024
LINE_1 = TimelineHistory.root(1)


def seg(number: int, timeline: int = 1) -> str:
    return WalSegment(timeline, number).name


@pytest.fixture
def archive(memory_repo: Repository) -> WalArchive:
    return WalArchive(memory_repo, SYSTEM_ID)


def push(archive: WalArchive, *numbers: int, timeline: int = 1) -> None:
    for number in numbers:
        archive.push(seg(number, timeline), segment_bytes(seg(number, timeline)))


def flip(archive: WalArchive, name: str) -> None:
    backend = archive.repo.backend
    sealed = bytearray(backend.get(archive.object_name(name)))
    sealed[len(sealed) // 2] ^= 0x01
    backend.put(archive.object_name(name), bytes(sealed))


def replace(archive: WalArchive, name: str, sealed: bytes) -> None:
    archive.repo.backend.put(archive.object_name(name), sealed)


def verify(archive: WalArchive, name: str, history: TimelineHistory | None = LINE_1) -> None:
    verify_file(archive, name, segment_size=MIB16, history_of=lambda _t: history)


def backup(name: str, start: str, stop: str, timeline: int = 1, minutes: int = 0) -> BaseBackup:
    t0 = datetime(2026, 5, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    return BaseBackup(
        method="local",
        system_id=SYSTEM_ID,
        version="15",
        version_num=150000,
        timeline=timeline,
        start_lsn=Lsn.parse(start),
        stop_lsn=Lsn.parse(stop),
        start_time=t0,
        stop_time=t0 + timedelta(seconds=30),
        label=name,
        data_directory="/d",
        snapshot_id=name * 8,
    )


def run_check(archive: WalArchive, backups: list[BaseBackup], *, read: bool = False) -> list[WalIssue]:
    later = datetime.now(UTC) + timedelta(hours=1)  # every object is older than the in-flight margin
    archive.repo.clock = lambda: later
    checker = WalChecker(archive.repo, backups)
    return checker.run(read_subset=(lambda keys, _rng: sorted(keys)) if read else None).issues


def test_a_verified_segment_reads_back_in_pieces_whatever_its_codec(archive: WalArchive) -> None:
    push(archive, 1)
    random_body = segment_bytes(seg(2))[:64] + os.urandom(MIB16 - 64)  # does not compress: stored as is
    archive.push(seg(2), random_body)
    for name, expected in ((seg(1), segment_bytes(seg(1))), (seg(2), random_body)):
        content = archive.read_verified(name)
        assert (content.size, content.head) == (MIB16, expected[:512])
        assert content.stored_bytes == archive.repo.backend.stat(archive.object_name(name)).size
        verify(archive, name)


def test_a_flipped_bit_a_truncation_and_a_moved_object_are_each_named(archive: WalArchive) -> None:
    push(archive, 1, 2, 3)
    flip(archive, seg(1))
    with pytest.raises(WalDamaged, match="fails authentication"):
        verify(archive, seg(1))
    sealed = archive.repo.backend.get(archive.object_name(seg(2)))
    replace(archive, seg(2), sealed[: len(sealed) // 2])
    with pytest.raises(WalDamaged, match="fails authentication"):
        verify(archive, seg(2))
    replace(archive, seg(1), archive.repo.backend.get(archive.object_name(seg(3))))
    with pytest.raises(WalDamaged, match=f"holds {seg(3)} \\(moved or swapped\\)") as caught:
        verify(archive, seg(1))
    assert "lifeboat copy" in caught.value.hint and "repair index" not in caught.value.hint


def test_a_valid_segment_sealed_under_another_name_is_caught_by_its_page_header(archive: WalArchive) -> None:
    push(archive, 4)
    replace(archive, seg(3), archive.seal(seg(3), segment_bytes(seg(4))))
    with pytest.raises(WalDamaged, match=f"the page header is that of segment {seg(4)}"):
        verify(archive, seg(3))
    other = segment_bytes(seg(5), system_id="7300000000000000001")
    replace(archive, seg(5), archive.seal(seg(5), other))
    with pytest.raises(WalDamaged, match="belongs to database system 7300000000000000001"):
        verify(archive, seg(5))
    replace(archive, seg(6), archive.seal(seg(6), segment_bytes(seg(6))[: MIB16 // 2]))
    with pytest.raises(WalDamaged, match="8388608 bytes, the page header says 16777216"):
        verify(archive, seg(6))


def test_history_and_backup_files_must_parse(archive: WalArchive) -> None:
    archive.push("00000002.history", b"1\t0/3002138\tbefore 2026-11-30 00:11:46+00\n")
    verify(archive, "00000002.history")
    archive.push("00000003.history", b"this is not a history\n")
    with pytest.raises(WalDamaged, match="malformed"):
        verify(archive, "00000003.history")
    label = (
        b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
        b"STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n"
    )
    archive.push("000000010000000000000002.00000028.backup", label)
    verify(archive, "000000010000000000000002.00000028.backup")
    archive.push("000000010000000000000003.00000028.backup", label)
    with pytest.raises(WalDamaged, match="records the start of a backup in 000000010000000000000002"):
        verify(archive, "000000010000000000000003.00000028.backup")


def test_the_restore_pre_check_names_the_first_damaged_segment_in_replay_order(archive: WalArchive) -> None:
    push(archive, *range(1, 9))
    flip(archive, seg(6))
    flip(archive, seg(3))
    needed = [WalSegment(1, n) for n in range(1, 9)]
    assert verify_recovery_wal(archive, needed[:2], LINE_1, workers=2) > 0
    with pytest.raises(WalDamaged) as caught:
        verify_recovery_wal(archive, needed, LINE_1, workers=2)
    assert caught.value.message.startswith(f"WAL segment {seg(3)} (timeline 1, system {SYSTEM_ID}) is damaged")
    assert "nothing was restored" in caught.value.message
    assert "before LSN 0/3000000" in caught.value.hint and "repair index" not in caught.value.hint


class _Unreadable(BackendWrapper):
    """Storage that refuses to read one object (as a permission fault would)."""

    def __init__(self, inner: Backend, name: str) -> None:
        super().__init__(inner)
        self.name = name

    def get(self, name: str) -> bytes:
        if name == self.name:
            raise StoragePermissionDenied(f"{name}: permission denied")
        return self._inner.get(name)


def test_a_storage_fault_in_the_pre_check_stays_a_storage_error(archive: WalArchive) -> None:
    push(archive, 1, 2)
    archive.repo.backend = _Unreadable(archive.repo.backend, archive.object_name(seg(2)))
    with pytest.raises(StoragePermissionDenied):
        verify_recovery_wal(archive, [WalSegment(1, 1), WalSegment(1, 2)], LINE_1, workers=2)


def errors(issues: list[WalIssue]) -> list[str]:
    return [f"{i.details.get('file')}: {i.message}" for i in issues if i.error]


def warnings(issues: list[WalIssue]) -> list[str]:
    return [f"{i.details.get('file', i.object)}: {i.message}" for i in issues if not i.error]


def test_a_hole_recovery_must_pass_is_an_error_one_a_newer_backup_bridges_a_warning(archive: WalArchive) -> None:
    push(archive, 2, 3, 5, 6, 9, 10)
    monday = backup("a", "0/2000028", "0/3000100")
    issues = run_check(archive, [monday])
    assert errors(issues) == [
        f"{seg(4)}: is missing ({seg(4)}) while later WAL of timeline 1 is archived: "
        "recovery cannot pass it: the WAL archived after it is unusable",
        f"{seg(7)}: is missing ({seg(7)}..{seg(8)} (2 segments)) while later WAL of timeline 1 is archived: "
        "recovery cannot pass it: the WAL archived after it is unusable",
    ]
    tuesday = backup("b", "0/9000028", "0/9000100", minutes=60)
    issues = run_check(archive, [monday, tuesday])
    assert [i.details["file"] for i in issues if i.error] == []
    assert len(warnings(issues)) == 2
    assert "base backup bbbbbbbb and later are not affected" in warnings(issues)[0]
    # Before every base backup, a hole costs nothing a recovery could read.
    issues = run_check(archive, [tuesday])
    assert errors(issues) == []
    assert warnings(issues)[0].endswith("no base backup starts before it, so no recovery reads it")


def test_a_hole_whose_successor_just_arrived_may_still_be_archiving(archive: WalArchive) -> None:
    push(archive, 1, 3)
    checker = WalChecker(archive.repo, [])
    issues = checker.run().issues
    assert [i.error for i in issues] == [False]
    assert "PostgreSQL may still be archiving it" in issues[0].message


def test_a_backup_without_its_wal_and_a_timeline_without_its_history_are_errors(archive: WalArchive) -> None:
    push(archive, 2, 4)
    push(archive, 4, 5, timeline=2)
    issues = run_check(archive, [backup("a", "0/2000028", "0/4000100")])
    assert errors(issues) == [
        f"{seg(3)}: is missing: base backup aaaaaaaa cannot be restored without it",
        "00000002.history: is missing: timeline 2 has archived WAL or a base backup, "
        "but recovery cannot follow it without its history",
    ]


def test_read_data_names_damaged_files_and_judges_the_first_segment_of_a_timeline_by_its_history(
    archive: WalArchive,
) -> None:
    push(archive, 2, 3, 4)
    archive.push("00000002.history", b"1\t0/3002138\tbefore 2026-11-30 00:11:46+00\n")
    # Timeline 2 began inside segment 3: PostgreSQL copied its first page from timeline 1.
    archive.push(seg(3, 2), segment_bytes(seg(3)))
    push(archive, 4, timeline=2)
    clean = run_check(archive, [backup("a", "0/2000028", "0/2000100")], read=True)
    assert errors(clean) == [] and warnings(clean) == []
    flip(archive, seg(4, 2))
    replace(archive, seg(4), archive.seal(seg(4), segment_bytes(seg(4, 2))))
    issues = run_check(archive, [backup("a", "0/2000028", "0/2000100")], read=True)
    assert [(i.details["file"], i.details["timeline"], i.details["system_id"]) for i in issues] == [
        (seg(4), 1, SYSTEM_ID),
        (seg(4, 2), 2, SYSTEM_ID),
    ]
    assert "the page header names timeline 2, expected 1" in issues[0].message
    assert "fails authentication" in issues[1].message


def test_objects_that_are_not_archived_wal_files_are_named(archive: WalArchive) -> None:
    push(archive, 1, 2)
    backend = archive.repo.backend
    backend.put(f"wal/{SYSTEM_ID}/00000001/notes.txt", b"hello")
    backend.put(f"wal/{SYSTEM_ID}/00000002/{seg(3)}", b"misfiled")
    backend.put(archive.object_name(seg(2)), b"")
    issues = run_check(archive, [])
    assert errors(issues) == [f"{seg(2)}: is 0 bytes, too small for an archived WAL file (truncated)"]
    assert sorted(w.split(":")[0] for w in warnings(issues)) == [
        f"wal/{SYSTEM_ID}/00000001/notes.txt",
        f"wal/{SYSTEM_ID}/00000002/{seg(3)}",
    ]


# --- wal-fetch of a damaged file ------------------------------------------------------------------


def test_a_damaged_segment_among_the_prefetched_is_tried_once_and_the_fetcher_still_goes_idle(
    archive: WalArchive, tmp_path: Path
) -> None:
    push(archive, 1, 2, 3)
    flip(archive, seg(2))
    spool = Spool(tmp_path / "spool").ensure()
    fetcher = BackgroundFetcher(
        archive, spool, FetchSettings(prefetch=2, idle_exit=0.3, poll=0.002), segment_size=MIB16
    )
    worker = threading.Thread(target=fetcher.run, daemon=True)
    worker.start()
    assert fetch_file(seg(1), tmp_path / "x", spool, lambda: None, FetchSettings(timeout=10)).found
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert [line.split(" ", 3)[2:] for line in spool.log_path.read_text().splitlines()] == [
        ["FAILED", f"{seg(2)}: archived WAL file {seg(2)}: fails authentication (damaged, tampered or another key)"]
    ]


@pytest.fixture
def damaged_pg_wal(tmp_path: Path, cli: Cli) -> Path:
    """A data directory whose archived first segment is damaged, in recovery."""
    assert cli("init").code == 0
    pg_wal = make_pg_wal(tmp_path / "data")
    add_ready(pg_wal, seg(1))
    assert cli("wal-push", "--sync", str(pg_wal / seg(1))).code == 0
    stored = tmp_path / "repo" / "wal" / SYSTEM_ID / seg(1)[:8] / seg(1)
    sealed = bytearray(stored.read_bytes())
    sealed[len(sealed) // 2] ^= 0x01
    stored.write_bytes(bytes(sealed))
    data = pg_wal.parent
    (data / "PG_VERSION").write_text("15\n")
    (data / "recovery.signal").write_text("")
    return pg_wal


@pytest.mark.parametrize("sync", [True, False])
def test_wal_fetch_of_a_damaged_segment_stops_recovery_with_a_hint_that_helps(
    damaged_pg_wal: Path, cli: Cli, sync: bool
) -> None:
    (damaged_pg_wal.parent / "postgresql.auto.conf").write_text("restore_command = 'lifeboat wal-fetch %f %p'\n")
    destination = damaged_pg_wal / "RECOVERYXLOG"
    result = cli("wal-fetch", *(["--sync"] if sync else []), seg(1), str(destination))
    assert result.code == 126, result  # recovery to the end of the archive must not end early
    assert f"lifeboat: error: archived WAL file {seg(1)}: fails authentication" in result.stderr
    assert "hint: restore from a replica repository made by 'lifeboat copy'" in result.stderr
    assert "'lifeboat check --read-data' shows every damaged WAL file" in result.stderr
    assert "repair index" not in result.stderr
    assert not destination.exists()


@pytest.mark.parametrize("sync", [True, False])
def test_with_a_recovery_target_a_damaged_segment_is_answered_as_not_archived(
    damaged_pg_wal: Path, cli: Cli, sync: bool
) -> None:
    (damaged_pg_wal.parent / "postgresql.auto.conf").write_text(
        "restore_command = 'lifeboat wal-fetch %f %p'\nrecovery_target = 'immediate'\n"
    )
    destination = damaged_pg_wal / "RECOVERYXLOG"
    result = cli("wal-fetch", *(["--sync"] if sync else []), seg(1), str(destination))
    assert result.code == 1, result  # PostgreSQL read ahead past its target, or stops: target not reached
    assert f"lifeboat: warning: archived WAL file {seg(1)}: fails authentication" in result.stderr
    assert "answered as not archived" in result.stderr
    assert not destination.exists()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"recovery.signal": "", "postgresql.auto.conf": "recovery_target_lsn = '0/3000000'\n"}, True),
        ({"recovery.signal": "", "postgresql.auto.conf": "recovery_target_time = '2026-05-01 12:00:00+00'\n"}, True),
        ({"recovery.signal": "", "postgresql.auto.conf": "recovery_target_name = 'it''s'  # quoted\n"}, True),
        (
            {"recovery.signal": "", "postgresql.auto.conf": "recovery_target_xid = '7'\nrecovery_target_xid = ''\n"},
            False,
        ),
        ({"recovery.signal": "", "postgresql.auto.conf": "restore_command = 'x'\n"}, False),  # latest
        ({"postgresql.auto.conf": "recovery_target = 'immediate'\n"}, False),  # not in recovery
        (
            {"recovery.signal": "", "standby.signal": "", "postgresql.auto.conf": "recovery_target = 'immediate'\n"},
            False,
        ),
        (
            {"recovery.signal": "", "postgresql.auto.conf": "recovery_target = 'immediate'\n", "PG_VERSION": "12\n"},
            False,
        ),
    ],
)
def test_which_recoveries_insist_on_reaching_their_target(
    tmp_path: Path, files: dict[str, str], expected: bool
) -> None:
    (tmp_path / "PG_VERSION").write_text("15\n")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert recovering_to_a_target(tmp_path) is expected


def test_hints_for_wal_that_is_not_whole_point_at_what_helps(archive: WalArchive, tmp_path: Path) -> None:
    push(archive, 1)
    flip(archive, seg(1))
    with pytest.raises(WalConflict, match="the archived copy is unreadable") as conflict:
        archive.push(seg(1), segment_bytes(seg(1)))
    assert "'lifeboat check --read-data'" in conflict.value.hint
    assert f"removing the damaged {archive.object_name(seg(1))}" in conflict.value.hint
    pg_wal = make_pg_wal(tmp_path / "data")
    (pg_wal / seg(2)).write_bytes(b"\x00" * 64)
    with pytest.raises(IntegrityError, match="does not start with a WAL page header") as not_wal:
        read_wal_file(pg_wal, seg(2), SYSTEM_ID)
    assert "not a whole WAL segment" in not_wal.value.hint and "repair index" not in not_wal.value.hint
