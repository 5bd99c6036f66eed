"""Losing the server: restore latest after a crash and a deleted data directory; the
stream method; tablespaces restored elsewhere."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from lifeboat.sources.tools.pgcluster import chown_tree
from tests.postgres.conftest import OS_USER, WorldFactory

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-disaster")]


def test_after_a_crash_and_a_lost_data_directory_every_archived_transaction_comes_back(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE orders(id int PRIMARY KEY, batch int)")
    c.psql("INSERT INTO orders SELECT g, 0 FROM generate_series(1, 1000) g")
    world.backup()
    archived: list[str] = []
    for batch in (1, 2, 3):
        c.psql(f"INSERT INTO orders SELECT g, {batch} FROM generate_series({batch * 1000 + 1}, {batch * 1000 + 500}) g")
        archived.append(world.switch_wal())
    for name in archived:
        world.wait_archived(name)
    c.psql("INSERT INTO orders VALUES (99999, 4)")  # in the current segment: never archived
    port = c.port

    c.stop("immediate")
    shutil.rmtree(c.data_dir)

    result, restored = world.restore(c.data_dir, port=port)
    assert result.code == 0, result
    report = json.loads(result.stdout)
    assert report["recovery"]["state"] == "promoted"
    assert restored.psql("SELECT batch, count(*) FROM orders GROUP BY batch ORDER BY batch").splitlines() == [
        "0|1000",
        "1|500",
        "2|500",
        "3|500",
    ]
    assert os.stat(c.data_dir).st_mode & 0o777 == 0o700
    restored.stop()


def test_the_stream_method_backs_up_through_pg_basebackup_and_restores(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE t(id int)")
    c.psql("INSERT INTO t SELECT generate_series(1, 5000)")
    backup = json.loads(world.backup("--method", "stream").stdout)
    assert backup["postgres"]["method"] == "stream"
    assert backup["postgres"]["wal_included"] is True
    c.psql("INSERT INTO t SELECT generate_series(5001, 6000)")
    world.wait_archived(world.switch_wal())

    result, restored = world.restore(world.new_dir("stream-immediate"), "--immediate", "--archive-off")
    assert result.code == 0, result
    assert restored.psql("SELECT count(*) FROM t") == "5000"
    restored.stop()

    latest, restored = world.restore(world.new_dir("stream-latest"), "--archive-off")
    assert latest.code == 0, latest
    assert restored.psql("SELECT count(*) FROM t") == "6000"
    restored.stop()


def test_a_tablespace_is_backed_up_and_restored_where_asked(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    space = world.base / "space"
    space.mkdir()
    chown_tree(space, OS_USER)
    c.psql(f"CREATE TABLESPACE fast LOCATION '{space}'")
    c.psql("CREATE TABLE hot(id int) TABLESPACE fast")
    c.psql("INSERT INTO hot SELECT generate_series(1, 2500)")
    backup = json.loads(world.backup().stdout)
    assert [t["name"] for t in backup["postgres"]["tablespaces"]] == ["fast"]
    world.wait_archived(world.switch_wal())

    refused = world.lifeboat("restore", "postgres", "--target-dir", str(world.new_dir("ts-refused")))
    assert refused.code == 1
    assert f"tablespace directory {space} is not empty" in refused.stderr

    moved = world.new_dir("space-moved")
    result, restored = world.restore(world.new_dir("ts"), "--tablespace", f"fast={moved}", "--archive-off")
    assert result.code == 0, result
    assert restored.psql("SELECT count(*) FROM hot") == "2500"
    oid = backup["postgres"]["tablespaces"][0]["oid"]
    assert os.readlink(world.new_dir("ts") / "pg_tblspc" / str(oid)) == str(moved)
    assert restored.psql("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'fast'") == str(moved)
    restored.stop()
