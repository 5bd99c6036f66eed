"""A base backup taken while pgbench writes restores to a cluster that pg_amcheck passes,
with the right counts; a second backup stores only what changed."""

from __future__ import annotations

import json
import time

import pytest

from tests.postgres.conftest import WorldFactory

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-busy")]

SCALE = 2


def test_a_backup_under_pgbench_restores_to_a_consistent_cluster(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    init = c.client("pgbench", "-i", "-s", str(SCALE), "-q", "postgres")
    assert init.returncode == 0, init.stderr
    load = c.background("pgbench", "-T", "15", "-c", "2", "-j", "2", "postgres")
    time.sleep(1.0)
    backup = json.loads(world.backup("--verify-checksums").stdout)
    assert load.poll() is None, "pgbench ended before the backup did: the test proves nothing"
    assert load.wait(timeout=60) == 0, load.stderr.read() if load.stderr else ""
    assert backup["checksum_pages_verified"] > 0
    assert backup["checksum_failures"] == 0  # pages written during the backup are not false alarms
    expected = c.psql("SELECT (SELECT count(*) FROM pgbench_history), (SELECT sum(abalance) FROM pgbench_accounts)")
    assert int(expected.split("|")[0]) > 0
    world.wait_archived(world.switch_wal())

    result, restored = world.restore(world.new_dir("busy"), "--archive-off")
    assert result.code == 0, result
    check = restored.client("pg_amcheck", "--all", "--install-missing", "--heapallindexed", "-U", "postgres")
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    counts = restored.psql(
        "SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_branches),"
        " (SELECT count(*) FROM pgbench_tellers)"
    )
    assert counts == f"{SCALE * 100000}|{SCALE}|{SCALE * 10}"
    got = restored.psql("SELECT (SELECT count(*) FROM pgbench_history), (SELECT sum(abalance) FROM pgbench_accounts)")
    assert got == expected
    restored.stop()


def test_a_second_backup_skips_unchanged_files_and_stores_only_changed_blocks(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    assert c.client("pgbench", "-i", "-s", str(SCALE), "-q", "postgres").returncode == 0
    c.psql("CHECKPOINT")
    time.sleep(2.5)  # files written this close to a backup's start are read again by the next one
    first = json.loads(world.backup().stdout)
    time.sleep(2.5)  # past the reuse safety window around the first backup's start
    c.psql("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 100")
    c.psql("CHECKPOINT")
    second = json.loads(world.backup().stdout)
    assert second["parent"] == first["snapshot"]["id"]
    assert second["files_unmodified"] > 0.8 * (
        second["files_new"] + second["files_changed"] + second["files_unmodified"]
    )
    assert second["bytes_new"] < first["bytes_new"] / 10
    assert second["bytes_stored"] < first["bytes_stored"] / 10
