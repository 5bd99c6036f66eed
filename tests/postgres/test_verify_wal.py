"""``lifeboat verify`` of PostgreSQL base backups on a real cluster: the WAL from every kept base
backup to its consistency point and on through the newest archived segment is there, and read
back with --read-data; a missing segment is named with what can no longer be reached."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.core.basebackup import BaseBackup
from lifeboat.core.wal import Lsn, WalSegment
from lifeboat.operations.pg_continuity import check_wal_continuity
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive
from lifeboat.sources.postgres.pgdata import read_system_id
from tests.postgres.conftest import PgWorld, WorldFactory
from tests.postgres.fakewal import SYSTEM_ID, segment_bytes

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-verify")]


def _switches(world: PgWorld, count: int, start: int) -> list[str]:
    names = []
    for i in range(start, start + count):
        world.cluster.psql(f"INSERT INTO t VALUES ({i})")
        names.append(world.switch_wal())
    for name in names:
        world.wait_archived(name)
    return names


def _age_the_archive(world: PgWorld) -> None:
    """Every archived object an hour old: no hole can be a segment still on its way."""
    old = time.time() - 3600
    for folder, _dirs, files in os.walk(world.repo_dir / "wal"):
        for name in files:
            os.utime(os.path.join(folder, name), (old, old))


def _wal_object(world: PgWorld, name: str) -> str:
    return str(world.repo_dir / "wal" / read_system_id(world.cluster.data_dir) / name[:8] / name)


def _backups(world: PgWorld) -> list[BaseBackup]:
    return [BaseBackup.of(s) for s in world.repository().snapshots() if s.kind == "postgres"]


def test_verify_follows_the_wal_of_every_kept_base_backup_and_names_a_missing_segment(
    worlds: WorldFactory,
) -> None:
    world = worlds()
    world.cluster.psql("CREATE TABLE t(id int)")
    world.backup()
    names = _switches(world, 4, 0)
    (first,) = _backups(world)
    short = first.snapshot_id[:8]

    done = world.lifeboat("--json", "verify")
    assert done.code == 0, done
    entry = json.loads(done.stdout)["snapshots"][0]
    assert entry["ok"] is True and entry["kind"] == "postgres"
    assert entry["wal"]["newest_segment"] == names[-1]
    assert entry["wal"]["segments_needed"] >= 4
    assert "to consistency" in entry["checked"]

    read = world.lifeboat("--json", "verify", "--read-data")
    assert read.code == 0, read
    wal = json.loads(read.stdout)["snapshots"][0]["wal"]
    assert wal["files_read"] == wal["segments_needed"] and wal["bytes_read"] > 0

    # A segment between the base backup and the newest archived WAL goes missing.
    _age_the_archive(world)
    os.unlink(_wal_object(world, names[1]))
    failed = world.lifeboat("verify")
    assert failed.code == 13, failed
    assert f"WAL segment {names[1]} (timeline 1) is missing: recovery from base backup {short} " in failed.stdout
    assert f"up to {names[-1]}" in failed.stdout and "can no longer be reached" in failed.stdout
    assert failed.stderr.startswith(f"lifeboat: error: 1 of 1 snapshots failed verification: {short}"), failed
    recorded = json.loads(world.lifeboat("--json", "records", "--kind", "verify").stdout)["records"]
    assert recorded[0]["ok"] is False and names[1] in recorded[0]["summary"]["problems"][0]

    # A newer base backup after the hole: recovery from it reaches the end again; the older
    # one only loses point-in-time recovery past the hole (a note, not a failure).
    world.backup()
    _switches(world, 2, 10)
    _age_the_archive(world)
    bridged = world.lifeboat("verify")
    assert bridged.code == 0, bridged
    assert f"WAL segment {names[1]} is missing: point-in-time recovery from base backup {short}" in bridged.stderr

    # The older kept base backup loses a segment it needs to become consistent: it cannot be
    # restored, and verify says so although it checks the newest backup by default.
    os.unlink(_wal_object(world, first.start_segment.name))
    broken = world.lifeboat("verify")
    assert broken.code == 13, broken
    assert f"WAL segment {first.start_segment.name} (timeline 1) is missing: base backup {short}" in broken.stdout
    assert "cannot be restored" in broken.stdout and f"consistency point (LSN {first.stop_lsn})" in broken.stdout


def test_verify_read_data_finds_a_damaged_archived_segment(worlds: WorldFactory) -> None:
    world = worlds()
    world.cluster.psql("CREATE TABLE t(id int)")
    world.backup()
    names = _switches(world, 3, 0)
    path = Path(_wal_object(world, names[1]))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))

    assert world.lifeboat("verify").code == 0  # the names are all there
    done = world.lifeboat("verify", "--read-data")
    assert done.code == 13, done
    assert f"WAL file {names[1]} is damaged and recovery needs it" in done.stdout


# --- the rules, on fake segments (no server) -----------------------------------------------------------


def _backup(name: str, start: str, stop: str, minutes: int) -> BaseBackup:
    t0 = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    return BaseBackup(
        method="local",
        system_id=SYSTEM_ID,
        version="15",
        version_num=150000,
        timeline=1,
        start_lsn=Lsn.parse(start),
        stop_lsn=Lsn.parse(stop),
        start_time=t0,
        stop_time=t0 + timedelta(seconds=30),
        label=name,
        data_directory="/d",
        snapshot_id=name * 8,
    )


def _archive(repo: Repository, *numbers: int) -> None:
    archive = WalArchive(repo, SYSTEM_ID)
    for number in numbers:
        name = WalSegment(1, number).name
        archive.push(name, segment_bytes(name))


def _seg(number: int) -> str:
    return WalSegment(1, number).name


def test_the_rules_of_continuity(memory_repo: Repository) -> None:
    older = _backup("a", "0/2000028", "0/2000100", 0)  # segment 2
    newer = _backup("b", "0/6000028", "0/7000100", 60)  # segments 6..7
    _archive(memory_repo, 2, 3, 5, 6, 7, 8)  # segment 4 is missing
    memory_repo.clock = lambda: datetime.now(UTC) + timedelta(hours=1)

    on_older = check_wal_continuity(memory_repo, older, [older])
    assert on_older.problems == [
        f"WAL segment {_seg(4)} (timeline 1) is missing: recovery from base backup aaaaaaaa "
        f"({older.stop_time.isoformat(timespec='seconds')}) stops at LSN 0/4000000; the WAL archived after it, "
        f"up to {_seg(8)} (archived {_arrived(memory_repo, 8)}), can no longer be reached"
    ]
    assert on_older.newest == _seg(8) and on_older.needed == 7

    # A newer base backup bridges the hole: only point-in-time recovery from the older one is cut.
    on_newer = check_wal_continuity(memory_repo, newer, [older, newer], also=[older])
    assert on_newer.problems == []
    assert on_newer.notes == [
        f"WAL segment {_seg(4)} is missing: point-in-time recovery from base backup aaaaaaaa "
        f"({older.stop_time.isoformat(timespec='seconds')}) cannot pass LSN 0/4000000; "
        "base backup bbbbbbbb and later are not affected"
    ]

    # A segment the newer one needs to become consistent goes missing.
    memory_repo.backend.delete(WalArchive(memory_repo, SYSTEM_ID).object_name(_seg(7)))
    broken = check_wal_continuity(memory_repo, newer, [older, newer], also=[older])
    assert broken.problems == [
        f"WAL segment {_seg(7)} (timeline 1) is missing: base backup bbbbbbbb "
        f"({newer.stop_time.isoformat(timespec='seconds')}) cannot be restored, recovery needs it to reach "
        "the backup's consistency point (LSN 0/7000100)"
    ]


def test_a_hole_whose_successor_just_arrived_is_a_note(memory_repo: Repository) -> None:
    backup = _backup("a", "0/2000028", "0/2000100", 0)
    _archive(memory_repo, 2, 3, 5)
    found = check_wal_continuity(memory_repo, backup, [backup])
    assert found.problems == []
    assert found.notes[0].startswith(f"WAL segment {_seg(4)} is missing, but {_seg(5)} arrived ")
    assert found.notes[0].endswith("PostgreSQL may still be archiving it")


def _arrived(repo: Repository, number: int) -> str:
    mtime = repo.backend.stat(WalArchive(repo, SYSTEM_ID).object_name(_seg(number))).mtime
    return datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")
