"""Faults: an unreachable repository while archiving, kill -9 during a base backup, and a
segment missing from the archive."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import psycopg
import pytest

from lifeboat.repository.wal import WalArchive
from lifeboat.sources.postgres.pgdata import read_system_id
from lifeboat.sources.tools.pgcluster import chown_tree
from tests.postgres.conftest import OS_USER, PgWorld, WorldFactory, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-faults")]


def archiver(world: PgWorld) -> dict[str, str]:
    row = world.cluster.psql(
        "SELECT archived_count, failed_count, coalesce(last_archived_wal, '') FROM pg_stat_archiver"
    )
    archived, failed, last = row.split("|")
    return {"archived": archived, "failed": failed, "last": last}


def test_an_unreachable_repository_fails_archiving_and_postgresql_keeps_the_segment(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE t(id int)")
    world.wait_archived(world.switch_wal())
    away = world.base / "repo-away"
    os.rename(world.repo_dir, away)
    failed_before = int(archiver(world)["failed"])

    c.psql("INSERT INTO t SELECT generate_series(1, 100)")
    stuck = world.switch_wal()
    wait_until(lambda: int(archiver(world)["failed"]) > failed_before, timeout=60, what="an archive failure")
    assert (c.data_dir / "pg_wal" / "archive_status" / f"{stuck}.ready").exists()
    assert (c.data_dir / "pg_wal" / stuck).exists()
    log = c.log.read_text()
    assert "lifeboat: error: no Lifeboat repository at" in log
    assert "archive command failed" in log

    os.rename(away, world.repo_dir)
    assert not world.archive().exists(stuck)  # nothing was acknowledged while it was away
    after = world.switch_wal()  # wakes the archiver, which retries
    world.wait_archived(stuck)
    world.wait_archived(after)
    wait_until(lambda: not (c.data_dir / "pg_wal" / "archive_status" / f"{stuck}.ready").exists(), what="done")


def test_kill_9_during_a_base_backup_leaves_no_backup_mode_and_the_next_backup_works(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    done = c.client("pgbench", "-i", "-s", "4", "-q", "postgres")
    assert done.returncode == 0, done.stderr
    argv = [sys.executable, "-m", "lifeboat", "backup", "postgres", *world.conn_args(), "--workers", "1"]
    killed = subprocess.Popen(
        argv,
        env={**os.environ, **world.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    in_backup = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lifeboat backup'"
    # The session's last statement shows when backup mode has begun: kill right then, while
    # the files are still being read (a fixed delay let a fast machine finish the backup).
    # Polled on one held connection every few milliseconds: a psql per poll was too slow to
    # see a backup of this size under load.
    started = in_backup + " AND query LIKE '%pg_backup_start%'"
    with psycopg.connect(
        host=str(c.socket_dir), port=c.port, user=c.db_user, dbname="postgres", autocommit=True
    ) as watcher:
        wait_until(
            lambda: watcher.execute(started).fetchone() == (1,),
            timeout=60,
            what="the backup's pg_backup_start",
            interval=0.005,
        )
    os.killpg(killed.pid, signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL  # killed mid-backup, not after it finished
    wait_until(lambda: c.psql(in_backup) == "0", timeout=30, what="the server ending the backup")

    second = json.loads(world.backup().stdout)
    snapshots = json.loads(world.lifeboat("--json", "snapshots").stdout)
    assert [s["id"] for s in snapshots] == [second["snapshot"]["id"]]
    result, restored = world.restore(world.new_dir("after-kill"), "--immediate", "--archive-off")
    assert result.code == 0, result
    assert restored.psql("SELECT count(*) FROM pgbench_accounts") == "400000"
    restored.stop()


def test_a_missing_segment_shows_as_a_gap_and_a_restore_across_it_names_it(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE t(id int)")
    world.backup()
    names = []
    for i in range(4):
        c.psql(f"INSERT INTO t VALUES ({i})")
        names.append(world.switch_wal())
    for name in names:
        world.wait_archived(name)
    damaged = world.base / "repo-with-gap"
    shutil.copytree(world.repo_dir, damaged)
    chown_tree(damaged, OS_USER)
    missing = names[1]
    system_id = read_system_id(c.data_dir)
    os.unlink(damaged / "wal" / system_id / missing[:8] / missing)
    env = {"LIFEBOAT_REPO": str(damaged)}

    shown = world.lifeboat("--json", "pg", "info", env=env)
    assert shown.code == 13, shown  # a gap is damage: monitoring sees it by the exit code (docs/postgres.md)
    info = json.loads(shown.stdout)["clusters"][0]
    timeline = info["wal"]["timelines"][0]
    assert timeline["gaps"] == [missing]
    assert info["recoverable"]["blocked_by"] == missing
    text = world.lifeboat("pg", "info", env=env)
    assert text.code == 13, text
    assert f"GAP: 1 missing: {missing}" in text.stdout
    assert "Traceback" not in text.stderr

    latest = world.lifeboat("restore", "postgres", "--target-dir", str(world.new_dir("gap-latest")), env=env)
    assert latest.code == 13
    assert f"WAL segment {missing} is missing from the archive" in latest.stderr
    assert not world.new_dir("gap-latest").exists()

    # A time target beyond the gap is only found out during replay: recovery stops there.
    now = c.psql("SELECT clock_timestamp()")
    result, _ = world.restore(world.new_dir("gap-time"), "--time", now, "--archive-off", env=env)
    assert result.code == 1
    assert missing in result.stderr
    assert "recovery failed" in result.stderr

    # Before the gap is fine.
    ok, restored = world.restore(world.new_dir("gap-before"), "--immediate", "--archive-off", env=env)
    assert ok.code == 0, ok
    restored.stop()
    assert WalArchive(world.repository(), system_id).exists(missing)  # the real archive is untouched
