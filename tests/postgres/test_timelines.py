"""Timelines with real clusters: copies restored to earlier points never break the archive, a
test restore does not archive, a disaster restore does and is followed, and `pg info` says
which timeline is live and exits 13 on a gap after the newest base backup. Most clusters use
1 MiB WAL segments to keep recoveries short; the test and disaster restores use the default."""

from __future__ import annotations

import json

import pytest

from lifeboat.core.wal import Lsn, history_file_name
from tests.postgres.conftest import PgWorld, WorldFactory
from tests.postgres.timeline_model import SETTINGS, RowModel, history_line, labels, report, target_args

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-timelines")]

KEEP_ARCHIVING = ("--archive",)  # the copy archives its new timeline into the repository


def production(world: PgWorld) -> RowModel:
    world.cluster.psql("CREATE TABLE rows(id serial PRIMARY KEY, label text UNIQUE)")
    world.backup()
    return RowModel()


def archive_all(world: PgWorld, cluster: object = None, *also: str) -> None:
    """Switch to a new segment and wait until the finished one (and ``also``) are archived."""
    switched = world.switch_wal(cluster)  # type: ignore[arg-type]
    for name in (switched, *also):
        world.wait_archived(name)


def info(world: PgWorld) -> tuple[int, dict[str, object]]:
    result = world.lifeboat("--json", "pg", "info")
    clusters = json.loads(result.stdout)["clusters"]
    assert len(clusters) == 1, result
    return result.code, clusters[0]


def timelines_of(cluster_info: dict[str, object]) -> dict[int, dict[str, object]]:
    wal = cluster_info["wal"]
    assert isinstance(wal, dict)
    return {t["timeline"]: t for t in wal["timelines"]}


def test_copies_restored_to_earlier_points_leave_every_timeline_restorable(worlds: WorldFactory) -> None:
    """The reproduction: two promoted copies restored to earlier points archive timelines 2 and 3
    (3's history has a switch point before 2's, as PostgreSQL writes it); every later restore
    failed with 'archived 00000003.history is malformed'."""
    world = worlds(settings=SETTINGS, wal_segment_mb=1)
    model = production(world)
    c = world.cluster
    r1, r2 = model.write(c, 1), model.write(c, 1)
    model.write(c, 1)
    archive_all(world)

    first, copy2 = world.restore(world.new_dir("tl2"), *target_args(r2, "lsn"), *KEEP_ARCHIVING)
    assert first.code == 0, first
    assert report(first.stdout)["recovery"]["timeline"] == 2  # type: ignore[index]
    model.branch(2, 1, 1)
    model.write(copy2, 2)
    archive_all(world, copy2, history_file_name(2))
    copy2.stop()

    # a copy of timeline 2 restored to a point before timeline 2 began
    second, copy3 = world.restore(world.new_dir("tl3"), "--timeline", "2", *target_args(r1, "lsn"), *KEEP_ARCHIVING)
    assert second.code == 0, second
    assert report(second.stdout)["recovery"]["timeline"] == 3  # type: ignore[index]
    parent3, point3 = history_line(copy3.data_dir, 3)
    assert parent3 == 2 and Lsn.parse(point3) < Lsn.parse(history_line(copy2.data_dir, 2)[1])  # switch points go back
    model.branch(3, 2, 0)
    model.write(copy3, 3)
    archive_all(world, copy3, history_file_name(3))
    copy3.stop()

    third, restored = world.restore(world.new_dir("latest"))  # timeline 3's WAL arrived last
    assert third.code == 0, third
    assert report(third.stdout)["timeline"] == 3
    assert labels(restored) == model.expected(3, 99)
    restored.stop()
    for timeline in (1, 2):
        again, restored = world.restore(world.new_dir(f"again-{timeline}"), "--timeline", str(timeline))
        assert again.code == 0, again
        assert labels(restored) == model.expected(timeline, 99)
        restored.stop()

    code, cluster = info(world)
    assert code == 0 and cluster["status"] == "ok"
    listed = timelines_of(cluster)
    assert (listed[2]["parent"], listed[2]["branched_from"]) == (1, 1)
    assert (listed[3]["parent"], listed[3]["switchpoint"]) == history_line(copy3.data_dir, 3)
    assert listed[3]["branched_from"] == 1  # its WAL continues timeline 1's, before 2 began
    assert listed[3]["live"] is True


def test_a_test_restore_does_not_archive_and_production_stays_latest(worlds: WorldFactory) -> None:
    world = worlds(settings=SETTINGS)
    model = production(world)
    c = world.cluster
    early = model.write(c, 1)
    model.write(c, 1)
    archive_all(world)
    before = {f.name for f in world.archive().files()}

    result, copy = world.restore(world.new_dir("test-copy"), *target_args(early, "time"))
    assert result.code == 0, result
    assert copy.psql("SHOW archive_mode") == "off"
    assert report(result.stdout)["archive"] is False
    copy.psql("INSERT INTO rows(label) VALUES ('only-in-the-copy')")
    copy.psql("SELECT pg_switch_wal()")
    assert copy.psql("SELECT archived_count FROM pg_stat_archiver") == "0"
    copy.stop()

    model.write(c, 1)
    archive_all(world)
    added = {f.name for f in world.archive().files()} - before
    assert added and all(name.startswith("00000001") for name in added), added  # no new timeline, history or WAL

    latest, restored = world.restore(world.new_dir("latest"))
    assert latest.code == 0, latest
    assert report(latest.stdout)["timeline"] == 1
    assert labels(restored) == model.expected(1, 99)
    restored.stop()
    code, cluster = info(world)
    assert (code, cluster["status"], cluster["gap"]) == (0, "ok", None)
    assert list(timelines_of(cluster)) == [1]


def test_a_copy_that_archived_is_named_but_never_becomes_latest(worlds: WorldFactory) -> None:
    """Before: after one copy kept archiving, the default restore returned the copy's data and
    `pg info` reported production's newer WAL as a gap of the copy's timeline."""
    world = worlds(settings=SETTINGS, wal_segment_mb=1)
    model = production(world)
    c = world.cluster
    early = model.write(c, 1)
    model.write(c, 1)
    archive_all(world)
    result, copy = world.restore(world.new_dir("archiving-copy"), *target_args(early, "xid"), *KEEP_ARCHIVING)
    assert result.code == 0, result
    copy.psql("INSERT INTO rows(label) VALUES ('only-in-the-copy')")
    archive_all(world, copy, history_file_name(2))
    copy.stop()
    for _ in range(2):  # production goes on, past the copy's WAL
        model.write(c, 1)
        archive_all(world)

    latest, restored = world.restore(world.new_dir("latest"))
    assert latest.code == 0, latest
    document = report(latest.stdout)
    assert labels(restored) == model.expected(1, 99)
    restored.stop()
    assert (document["timeline"], document["timeline_rule"]) == (1, "live")
    (other,) = document["other_timelines"]  # type: ignore[misc]
    assert (other["timeline"], other["newer_numbered"]) == (2, True)
    assert any("--timeline 2" in w for w in document["warnings"])  # type: ignore[union-attr]
    text = world.lifeboat("restore", "postgres", "--target-dir", str(world.new_dir("text")))
    assert text.code == 0, text
    assert "warning: timeline 2 (from timeline 1 at" in text.stderr and "give --timeline 2" in text.stderr

    code, cluster = info(world)
    assert (code, cluster["status"], cluster["gap"]) == (0, "ok", None)
    window = cluster["recoverable"]
    assert isinstance(window, dict) and (window["timeline"], window["blocked_by"]) == (1, None)
    assert timelines_of(cluster)[2]["parent"] == 1


def test_a_disaster_restore_keeps_archiving_and_the_next_restore_follows_it(worlds: WorldFactory) -> None:
    import shutil

    world = worlds(settings=SETTINGS)
    model = production(world)
    c = world.cluster
    model.write(c, 1)
    archive_all(world)
    model.write(c, 1)
    archive_all(world)
    port = c.port
    c.stop("immediate")
    shutil.rmtree(c.data_dir)

    result, server = world.restore(c.data_dir, *KEEP_ARCHIVING, port=port)
    assert result.code == 0, result
    document = report(result.stdout)
    assert document["recovery"]["timeline"] == 2  # type: ignore[index]
    assert server.psql("SHOW archive_mode") == "on"
    assert labels(server) == model.expected(1, 99)
    assert document["archive"] is True
    model.branch(2, 1, 99)
    model.write(server, 2)
    archive_all(world, server, history_file_name(2))
    assert {f.name for f in world.archive().files()} >= {"00000002.history"}

    after, restored = world.restore(world.new_dir("after-disaster"))
    assert after.code == 0, after
    document = report(after.stdout)
    assert labels(restored) == model.expected(2, 99)
    restored.stop()
    assert (document["timeline"], document["other_timelines"]) == (2, [])
    server.stop()
    code, cluster = info(world)
    assert (code, cluster["status"]) == (0, "ok")
    assert timelines_of(cluster)[2]["live"] is True


def test_pg_info_exits_13_on_a_gap_after_the_newest_base_backup(worlds: WorldFactory) -> None:
    world = worlds(settings=SETTINGS, wal_segment_mb=1)
    model = production(world)
    c = world.cluster
    segments: list[str] = []
    for _ in range(2):
        model.write(c, 1)
        segments.append(world.switch_wal())
    world.backup()  # the newest base backup
    for _ in range(3):
        model.write(c, 1)
        segments.append(world.switch_wal())
    for name in segments:
        world.wait_archived(name)
    archive = world.archive()
    whole = world.lifeboat("--json", "pg", "info")
    archive.delete(segments[0])  # between the two base backups: a hole, but not after the newest
    hole_before = world.lifeboat("--json", "pg", "info")
    archive.delete(segments[3])  # after the newest base backup, with later WAL archived
    gap = world.lifeboat("--json", "pg", "info")
    text = world.lifeboat("pg", "info")
    assert [whole.code, hole_before.code, gap.code, text.code] == [0, 0, 13, 13], (gap, text)

    (cluster,) = json.loads(whole.stdout)["clusters"]
    assert (cluster["status"], cluster["gap"]) == ("ok", None)
    (cluster,) = json.loads(hole_before.stdout)["clusters"]
    assert (cluster["status"], cluster["gap"]) == ("ok", None)
    assert any(segments[0] in p for p in cluster["problems"])
    (cluster,) = json.loads(gap.stdout)["clusters"]
    assert (cluster["status"], cluster["gap"]) == ("gap", segments[3])
    assert cluster["recoverable"]["blocked_by"] == segments[3]
    assert f"GAP after the newest base backup: {segments[3]} is missing" in text.stdout
    assert "recoverable on timeline 1" in text.stdout  # it keeps printing everything
