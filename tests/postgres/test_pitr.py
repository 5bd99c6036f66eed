"""Point-in-time recovery with real clusters: time, LSN and restore-point targets, timelines,
and the restore's refusals."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest

from lifeboat.sources.tools.pgcluster import ScratchCluster
from tests.postgres.conftest import PgWorld, WorldFactory

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-pitr")]


@dataclass
class Markers:
    """A cluster with a base backup and marker rows committed around three targets."""

    world: PgWorld
    time_target: str
    lsn_target: str
    name_target: str = "before-name"


def insert(cluster: ScratchCluster, label: str) -> None:
    cluster.psql(f"INSERT INTO markers(label) VALUES ('{label}')")


def labels(cluster: ScratchCluster) -> list[str]:
    return cluster.psql("SELECT label FROM markers ORDER BY id").splitlines()


@pytest.fixture(scope="module")
def markers(worlds: WorldFactory) -> Markers:
    world = worlds()
    c = world.cluster
    c.psql(
        "CREATE TABLE markers(id serial PRIMARY KEY, label text, committed_at timestamptz DEFAULT clock_timestamp())"
    )
    insert(c, "base")
    world.backup()
    insert(c, "before-time")
    time.sleep(0.2)
    time_target = c.psql("SELECT clock_timestamp()")
    time.sleep(0.2)
    insert(c, "after-time")
    insert(c, "before-lsn")
    lsn_target = c.psql("SELECT pg_current_wal_insert_lsn()")
    insert(c, "after-lsn")
    insert(c, "before-name")
    c.psql("SELECT pg_create_restore_point('before-name')")
    insert(c, "after-name")
    world.wait_archived(world.switch_wal())
    return Markers(world, time_target, lsn_target)


def test_restore_to_a_time_holds_exactly_the_rows_committed_before_it(markers: Markers) -> None:
    world = markers.world
    result, restored = world.restore(world.new_dir("to-time"), "--time", markers.time_target, "--archive-off")
    assert result.code == 0, result
    report = json.loads(result.stdout)
    assert report["recovery"]["state"] == "promoted"
    assert labels(restored) == ["base", "before-time"]
    restored.stop()


def test_restore_to_an_lsn_holds_the_rows_committed_before_it(markers: Markers) -> None:
    world = markers.world
    result, restored = world.restore(world.new_dir("to-lsn"), "--lsn", markers.lsn_target, "--archive-off")
    assert result.code == 0, result
    assert labels(restored) == ["base", "before-time", "after-time", "before-lsn"]
    restored.stop()


def test_restore_to_a_named_restore_point(markers: Markers) -> None:
    world = markers.world
    result, restored = world.restore(world.new_dir("to-name"), "--name", markers.name_target, "--archive-off")
    assert result.code == 0, result
    assert labels(restored)[-2:] == ["after-lsn", "before-name"]
    restored.stop()


def test_restore_to_the_end_of_the_backup_only(markers: Markers) -> None:
    world = markers.world
    result, restored = world.restore(world.new_dir("immediate"), "--immediate", "--archive-off")
    assert result.code == 0, result
    assert labels(restored) == ["base"]
    restored.stop()


def test_after_a_pitr_archiving_continues_on_timeline_2_and_a_later_restore_reaches_it(markers: Markers) -> None:
    world = markers.world
    first, branch = world.restore(world.new_dir("branch"), "--time", markers.time_target, "--archive")
    assert first.code == 0, first
    assert json.loads(first.stdout)["recovery"]["timeline"] == 2
    insert(branch, "on-timeline-2")
    switched = world.switch_wal(branch)
    assert switched.startswith("00000002")
    world.wait_archived(switched)
    world.wait_archived("00000002.history")
    info = json.loads(world.lifeboat("--json", "pg", "info").stdout)
    timelines = {t["timeline"]: t for t in info["clusters"][0]["wal"]["timelines"]}
    assert timelines[2]["parent"] == 1
    branch.stop()

    again, restored = world.restore(world.new_dir("on-branch"), "--archive-off")
    assert again.code == 0, again
    assert json.loads(again.stdout)["timeline"] == 2
    assert labels(restored) == ["base", "before-time", "on-timeline-2"]
    restored.stop()

    # The original timeline stays reachable on request.
    old, original = world.restore(world.new_dir("timeline-1"), "--timeline", "1", "--archive-off")
    assert old.code == 0, old
    assert labels(original)[-1] == "after-name"
    original.stop()


def test_a_restore_refuses_a_non_empty_directory_and_a_running_cluster(markers: Markers) -> None:
    world = markers.world
    target = world.new_dir("busy")
    target.mkdir()
    (target / "precious").write_text("keep me")
    refused = world.lifeboat("restore", "postgres", "--target-dir", str(target))
    assert refused.code == 1
    assert "is not empty" in refused.stderr
    assert (target / "precious").read_text() == "keep me"

    running = world.lifeboat("restore", "postgres", "--target-dir", str(world.cluster.data_dir))
    assert running.code == 1
    assert "running server" in running.stderr
    assert world.cluster.psql("SELECT count(*) FROM markers") == "7"

    forced, restored = world.restore(target, "--force", "--immediate", "--archive-off")
    assert forced.code == 0, forced
    assert not (target / "precious").exists()
    assert labels(restored) == ["base"]
    restored.stop()


def test_a_target_before_every_backup_is_refused_with_the_window(markers: Markers) -> None:
    world = markers.world
    result = world.lifeboat(
        "restore", "postgres", "--target-dir", str(world.new_dir("too-early")), "--time", "2001-01-01 00:00:00+00"
    )
    assert result.code == 1
    assert "no base backup can reach time 2001-01-01" in result.stderr
    assert not world.new_dir("too-early").exists()


def test_restore_to_a_transaction_id(markers: Markers) -> None:
    world = markers.world
    c = world.cluster
    xid = c.psql("BEGIN; INSERT INTO markers(label) VALUES ('xid-target'); SELECT txid_current(); COMMIT;")
    c.psql("INSERT INTO markers(label) VALUES ('after-xid')")
    world.wait_archived(world.switch_wal())
    # Timeline 1: the branch made above left it before this transaction existed.
    args = ("--xid", xid.strip(), "--timeline", "1", "--archive-off")
    result, restored = world.restore(world.new_dir("to-xid"), *args)
    assert result.code == 0, result
    assert labels(restored)[-2:] == ["after-name", "xid-target"]
    restored.stop()


def test_a_damaged_newest_base_backup_is_named_and_recovery_uses_the_one_before(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE markers(id serial PRIMARY KEY, label text, committed_at timestamptz DEFAULT now())")
    insert(c, "first")
    world.backup()
    insert(c, "second")
    world.backup()
    insert(c, "after")
    world.wait_archived(world.switch_wal())
    newest = json.loads(world.lifeboat("--json", "snapshots").stdout)[-1]["id"]
    stored = world.repo_dir / "snapshots" / newest
    damaged = bytearray(stored.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    stored.write_bytes(bytes(damaged))

    result, restored = world.restore(world.new_dir("despite-damage"))
    assert result.code == 0, result
    report = json.loads(result.stdout)
    assert report["snapshot"] != newest
    assert any(w.startswith(f"snapshot {newest[:8]} cannot be read") for w in report["warnings"]), report
    assert labels(restored) == ["first", "second", "after"]
    restored.stop()
