"""``restore postgres … --plan`` on a real cluster: the base backup and WAL range a restore
to a time would use, all present; a missing segment on the way makes the target
unreachable (exit 13) before anything is written; a tablespace's directory and mapping;
the plan's bytes are the restore's."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat.sources.tools.pgcluster import chown_tree
from tests.postgres.conftest import OS_USER, PgWorld, WorldFactory

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-plan")]


@dataclass
class Planned:
    world: PgWorld
    backup: dict
    space: Path
    time_target: str
    before: str  # a segment archived before the target time, after the backup
    after: str  # the first segment archived after the target time


@pytest.fixture(scope="module")
def planned(worlds: WorldFactory) -> Planned:
    world = worlds()
    c = world.cluster
    space = world.base / "space"
    space.mkdir()
    chown_tree(space, OS_USER)
    c.psql(f"CREATE TABLESPACE fast LOCATION '{space}'")
    c.psql("CREATE TABLE hot(id int) TABLESPACE fast")
    c.psql("INSERT INTO hot SELECT generate_series(1, 1000)")
    backup = json.loads(world.backup().stdout)
    c.psql("INSERT INTO hot SELECT generate_series(1, 100)")
    before = world.switch_wal()
    world.wait_archived(before)
    time.sleep(1.1)  # archive arrival times have the storage's resolution
    time_target = c.psql("SELECT clock_timestamp()")
    time.sleep(1.1)
    c.psql("INSERT INTO hot SELECT generate_series(1, 100)")
    after = world.switch_wal()
    world.wait_archived(after)
    c.psql("INSERT INTO hot SELECT generate_series(1, 100)")
    world.wait_archived(world.switch_wal())
    return Planned(world, backup, space, time_target, before, after)


def _plan(p: Planned, target: Path, *args: str) -> tuple[int, dict, str]:
    done = p.world.lifeboat("--json", "restore", "postgres", "--target-dir", str(target), "--plan", *args)
    return done.code, json.loads(done.stdout), done.stderr


def test_a_plan_to_a_time_names_the_base_backup_and_the_wal_range_all_present(planned: Planned) -> None:
    p = planned
    target = p.world.new_dir("plan-time")
    moved = p.world.new_dir("plan-space")
    code, plan, stderr = _plan(p, target, "--time", p.time_target, "--tablespace", f"fast={moved}")
    assert code == 0, (plan, stderr)
    assert plan["feasible"] is True and plan["kind"] == "postgres"
    record = p.backup["postgres"]
    base = plan["details"]["base_backup"]
    assert base["snapshot"] == p.backup["snapshot"]["id"] == plan["snapshot"]
    assert (base["start_lsn"], base["stop_lsn"], base["timeline"]) == (
        record["start_lsn"],
        record["stop_lsn"],
        record["timeline"],
    )
    wal = plan["details"]["wal"]
    assert wal["first"] == record["start_wal"]
    assert wal["last"] == p.after  # through the first segment archived after the target time
    assert wal["all_present"] is True and wal["missing"] == [] and wal["timelines"] == [1]
    assert wal["bytes"] == wal["segments"] * 16 * 1024 * 1024
    (space,) = plan["details"]["tablespaces"]
    assert (space["name"], space["recorded"], space["restore_to"]) == ("fast", str(p.space), str(moved))
    wheres = [w["where"] for w in plan["writes"]]
    assert wheres[:2] == [str(target), str(moved)]
    assert plan["bytes"] == sum(w["bytes"] for w in plan["writes"])
    assert plan["space"] and all(s["fits"] for s in plan["space"])
    assert plan["estimate"]["seconds"] is None
    assert not target.exists() and not moved.exists()  # nothing written

    text = p.world.lifeboat(
        "restore",
        "postgres",
        "--target-dir",
        str(target),
        "--plan",
        "--time",
        p.time_target,
        "--tablespace",
        f"fast={moved}",
    )
    assert text.code == 0, text
    assert f"  base backup: {p.backup['snapshot']['id'][:8]}, consistent at " in text.stdout
    assert f"  WAL: {record['start_wal']}..{p.after} (" in text.stdout and ": all present" in text.stdout
    assert f"  tablespace {space['oid']}: to {moved} (recorded at {p.space})" in text.stdout

    # The plan's bytes and files are what the restore then writes.
    restored = p.world.lifeboat(
        "--json",
        "restore",
        "postgres",
        "--target-dir",
        str(target),
        "--time",
        p.time_target,
        "--tablespace",
        f"fast={moved}",
        "--archive-off",
    )
    assert restored.code == 0, restored
    written = json.loads(restored.stdout)["restored"]
    on_disk = [w for w in plan["writes"] if not w["what"].startswith("WAL")]
    assert sum(w["bytes"] for w in on_disk) == written["bytes"]
    assert sum(w["files"] for w in on_disk) == written["files"]


def test_a_tablespace_in_use_is_refused_with_the_restores_message(planned: Planned) -> None:
    p = planned
    target = p.world.new_dir("plan-ts-refused")
    code, plan, stderr = _plan(p, target)
    assert code == 1
    assert plan["refusals"][0]["message"] == f"tablespace directory {p.space} is not empty"
    assert f"lifeboat: error: tablespace directory {p.space} is not empty" in stderr
    assert not target.exists()


def test_a_missing_segment_makes_the_target_unreachable_before_anything_is_written(planned: Planned) -> None:
    p = planned
    target = p.world.new_dir("plan-missing")
    moved = p.world.new_dir("plan-missing-space")
    p.world.archive().delete(p.before)
    code, plan, stderr = _plan(p, target, "--time", p.time_target, "--tablespace", f"fast={moved}")
    assert code == 13, (plan, stderr)
    assert plan["feasible"] is False
    assert plan["details"]["wal"]["missing"] == [p.before]
    assert plan["details"]["wal"]["all_present"] is False
    (refusal,) = plan["refusals"]
    assert refusal["exit_code"] == 13
    assert refusal["message"].startswith("cannot reach time ")
    assert p.before in refusal["message"]
    assert "lifeboat: error: cannot reach time" in stderr
    assert not target.exists() and not moved.exists()


def test_restore_source_plan_of_a_configured_postgres_source(planned: Planned) -> None:
    p = planned
    c = p.world.cluster
    config = p.world.base / "lifeboat.yaml"
    config.write_text(
        "sources:\n  db:\n    type: postgres\n"
        f"    data_directory: {c.data_dir}\n    host: {c.socket_dir}\n    port: {c.port}\n    user: postgres\n"
    )
    env = {"LIFEBOAT_CONFIG": str(config)}
    backed = p.world.lifeboat("--json", "backup", "postgres", "--source", "db", "--archive-wait", "60s", env=env)
    assert backed.code == 0, backed
    snapshot = json.loads(backed.stdout)["snapshot"]["id"]
    target = p.world.new_dir("plan-source")
    done = p.world.lifeboat("--json", "restore", "latest", "--source", "db", "--target", str(target), "--plan", env=env)
    assert done.code == 1, done  # the tablespace's own directory is in use: refused as the restore refuses
    assert f"tablespace directory {p.space} is not empty" in done.stderr
    plan = json.loads(done.stdout)
    assert plan["snapshot"] == snapshot and plan["details"]["wal"]["reach"] == "to the end of the archive"
    assert plan["details"]["wal"]["all_present"] is True and not target.exists()
