"""``lifeboat verify`` of PostgreSQL base backups on a real cluster: the WAL from every kept base
backup to its consistency point and on through the newest archived segment is there, and read
back with --read-data; a missing segment is named with what can no longer be reached."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from lifeboat.core.basebackup import BaseBackup
from lifeboat.sources.postgres.pgdata import read_system_id
from tests.postgres.conftest import PgWorld, WorldFactory

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
