"""``pg setup``, ``pg check``, ``pg info``, a configured source, and damaged-page detection."""

from __future__ import annotations

import json
import os

import pytest

from lifeboat.sources.tools.pgcluster import chown_tree
from tests.conftest import PASSPHRASE
from tests.postgres.conftest import OS_USER, WorldFactory

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-commands")]


def test_setup_applies_the_settings_and_check_proves_a_round_trip_with_a_configured_source(
    worlds: WorldFactory,
) -> None:
    world = worlds(settings={"archive_mode": "off", "archive_command": ""})
    c = world.cluster
    config = world.base / "lifeboat.yaml"
    config.write_text(
        f"""
repositories:
  main:
    url: {world.repo_dir}
    password_file: {world.password_file}
sources:
  db:
    type: postgres
    data_directory: {c.data_dir}
    host: {c.socket_dir}
    port: {c.port}
    user: postgres
    archive_queue_max: 8GiB
"""
    )
    chown_tree(config, OS_USER)
    env = {"LIFEBOAT_REPO": "", "LIFEBOAT_PASSWORD_FILE": "", "LIFEBOAT_CONFIG": str(config)}

    before = world.lifeboat("pg", "check", "--source", "db", env=env)
    assert before.code == 1
    assert "FAIL  archive_mode: off" in before.stdout
    assert "archiving is NOT working" in before.stdout

    printed = world.lifeboat("pg", "setup", "--source", "db", env=env)
    assert printed.code == 0, printed
    assert "archive_mode = 'on'" in printed.stdout
    assert "--apply" in printed.stdout

    applied = json.loads(world.lifeboat("--json", "pg", "setup", "--source", "db", "--apply", env=env).stdout)
    assert applied["applied"] is True
    assert applied["restart_needed"] == ["archive_mode"]
    command = applied["archive_command"]
    assert f"--config {config}" in command and "--source db" in command and "--queue-max 8GiB" in command
    assert command.endswith("wal-push --source db --queue-max 8GiB %p")
    assert PASSPHRASE.decode() not in command and str(world.password_file) not in command  # the config names it
    c.stop()
    c.start()

    after = world.lifeboat("--json", "pg", "check", "--source", "db", "--timeout", "2min", env=env)
    assert after.code == 0, after
    report = json.loads(after.stdout)
    assert report["ok"] is True
    assert report["round_trip_seconds"] is not None
    checks = {i["check"]: i["status"] for i in report["checks"]}
    assert checks["round trip"] == "ok" and checks["archive_timeout"] == "ok"

    backup = world.lifeboat("--json", "backup", "postgres", "--source", "db", env=env)
    assert backup.code == 0, backup
    assert json.loads(backup.stdout)["snapshot"]["source"] == "db"
    c.psql("CREATE TABLE later AS SELECT 1 AS one")
    world.wait_archived(world.switch_wal())
    result, restored = world.restore(world.new_dir("configured"), "--source", "db", "--archive-off", env=env)
    assert result.code == 0, result
    assert restored.psql("SELECT one FROM later") == "1"
    auto = (world.new_dir("configured") / "postgresql.auto.conf").read_text()
    assert f"--config {config}" in auto and "wal-fetch --source db %f %p" in auto
    restored.stop()


def test_info_lists_backups_wal_and_the_recoverable_window(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE t(id int)")
    world.backup()
    world.wait_archived(world.switch_wal())
    text = world.lifeboat("pg", "info")
    assert text.code == 0
    assert "base backups:" in text.stdout and "local" in text.stdout
    assert "recoverable on timeline 1: from" in text.stdout
    info = json.loads(world.lifeboat("--json", "pg", "info").stdout)["clusters"][0]
    backup = info["backups"][0]
    assert backup["system_id"] == info["system_id"]
    assert backup["version_num"] >= 150000
    assert {d["name"] for d in backup["databases"]} >= {"postgres", "template1"}
    assert backup["start_wal"] <= backup["stop_wal"]
    assert info["recoverable"]["earliest_backup"] == backup["snapshot"]
    assert info["recoverable"]["blocked_by"] is None
    assert info["wal"]["timelines"][0]["gaps"] == []


def test_page_checksum_verification_reports_a_damaged_page(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE fragile AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 3000) g")
    c.psql("CHECKPOINT")
    path = c.data_dir / c.psql("SELECT pg_relation_filepath('fragile')")
    c.stop()
    with open(path, "r+b") as relation:
        relation.seek(8192 * 2 + 4000)
        byte = relation.read(1)
        relation.seek(8192 * 2 + 4000)
        relation.write(bytes([byte[0] ^ 0xFF]))
    c.start()
    result = world.lifeboat("--json", "backup", "postgres", *world.conn_args(), "--verify-checksums")
    assert result.code == 3, result
    report = json.loads(result.stdout)
    assert report["checksum_failures"] == 1
    [damaged] = report["postgres"]["checksum_errors"]
    assert (damaged["path"], damaged["block"]) == (str(path), 2)
    assert f"{path}: page 2 fails its checksum" in result.stderr
    assert os.path.exists(path)


def test_prune_wal_removes_only_what_no_remaining_backup_needs(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE t(id int)")
    first = json.loads(world.backup().stdout)
    for i in range(3):
        c.psql(f"INSERT INTO t VALUES ({i})")
        world.switch_wal()
    second = json.loads(world.backup().stdout)
    c.psql("INSERT INTO t VALUES (99)")
    world.wait_archived(world.switch_wal())
    keep_from = second["postgres"]["start_wal"]

    older = json.loads(world.lifeboat("--json", "pg", "prune-wal").stdout)[0]
    assert older["keep_from"] == first["postgres"]["start_wal"]  # the first backup still needs its WAL
    assert older["removed"] == 0 or older["last_removed"] < first["postgres"]["start_wal"]
    forgot = world.lifeboat("forget", first["snapshot"]["id"])
    assert forgot.code == 0, forgot
    dry = json.loads(world.lifeboat("--json", "pg", "prune-wal", "--dry-run").stdout)[0]
    assert dry["removed"] > 0 and dry["dry_run"] is True
    assert dry["keep_from"] == keep_from
    done = json.loads(world.lifeboat("--json", "pg", "prune-wal").stdout)[0]
    assert done["removed"] == dry["removed"]
    assert done["last_removed"] < keep_from
    info = json.loads(world.lifeboat("--json", "pg", "info").stdout)["clusters"][0]
    assert info["wal"]["timelines"][0]["ranges"][0]["first"] == keep_from

    result, restored = world.restore(world.new_dir("after-prune"), "--archive-off")
    assert result.code == 0, result
    assert restored.psql("SELECT count(*) FROM t") == "4"
    restored.stop()
