"""``lifeboat health`` on a real cluster: the archive window from the repository, the archiver
from pg_stat_archiver, the .ready backlog and the spool; a broken archive_command makes it
CRITICAL naming the WAL file that failed; a stopped cluster is UNKNOWN, not CRITICAL."""

from __future__ import annotations

import json
import time

import pytest

from lifeboat.sources.tools.pgcluster import chown_tree
from tests.postgres.conftest import OS_USER, PgWorld, WorldFactory

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-health")]


def _configured(world: PgWorld, rpo: str = "1h") -> dict[str, str]:
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
    rpo: {rpo}
    archive_wait: 60s
"""
    )
    chown_tree(config, OS_USER)
    return {
        "LIFEBOAT_REPO": "",
        "LIFEBOAT_PASSWORD_FILE": "",
        "LIFEBOAT_CONFIG": str(config),
        "LIFEBOAT_STATE_DIR": str(world.base / "state"),
    }


def test_health_of_an_archiving_cluster_then_a_broken_archive_command(worlds: WorldFactory) -> None:
    world = worlds()
    env = _configured(world)
    backed_up = world.lifeboat("backup", "--source", "db", env=env)
    assert backed_up.code == 0, backed_up
    switched = world.switch_wal()
    world.wait_archived(switched)

    done = world.lifeboat("--json", "health", env=env)
    doc = json.loads(done.stdout)
    assert done.code == 0, done
    (db,) = doc["sources"]
    assert (db["source"], db["kind"], db["state"]) == ("db", "postgres", "OK")
    archiver = db["cluster"]["archiver"]
    assert archiver["archived_count"] >= 2 and archiver["failed_count"] == 0
    assert db["wal"]["end"] == db["wal"]["reached"] == switched  # the newest archived is the end of the window
    assert db["cluster"]["ready"] == 0 and db["cluster"]["ready_counted"].endswith("archive_status")
    assert db["cluster"]["spool"]["queued"] == 0
    assert db["wal"]["missing_segments"] == 0 and db["oldest_restorable"] is not None
    checks = {c["check"]: c["state"] for c in db["checks"]}
    assert checks == {"rpo": "OK", "wal": "OK", "archiver": "OK", "ready": "OK", "spool": "OK"}
    table = world.lifeboat("health", env=env)
    assert table.code == 0 and "archived WAL ends" in table.stdout and "0 failed; last archived" in table.stdout

    # archive_command fails: PostgreSQL counts the failures; health is CRITICAL and names the file.
    c = world.cluster
    c.psql("ALTER SYSTEM SET archive_command = 'false'")
    c.psql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    c.psql("SELECT pg_logical_emit_message(false, 'health', 'a record to archive')")
    stuck = world.switch_wal()
    deadline = time.monotonic() + 60
    while int(c.psql("SELECT failed_count FROM pg_stat_archiver")) == 0:
        assert time.monotonic() < deadline, "the archiver never failed"
        time.sleep(0.2)
    done = world.lifeboat("health", "--nagios", env=env)
    assert done.code == 2, done
    line = done.stdout.strip()
    assert line.startswith("LIFEBOAT CRITICAL - db: archiving fails: "), line
    assert stuck in line.split(" | ")[0]
    assert "'db_archiver_failed'=" in line and "'db_ready_files'=" in line
    doc = json.loads(world.lifeboat("--json", "health", env=env).stdout)
    (db,) = doc["sources"]
    assert db["cluster"]["archiver"]["last_failed_wal"] == stuck
    assert db["cluster"]["ready"] >= 1  # PostgreSQL waits for archive_command to succeed on it
    # (Lifeboat's background pusher may have stored it already: the spool says so, not queued.)
    assert db["cluster"]["spool"]["queued"] <= db["cluster"]["ready"]

    # The cluster stops: its live checks are UNKNOWN, the repository still answers for the rpo.
    c.psql("ALTER SYSTEM RESET archive_command")
    c.psql("SELECT pg_reload_conf()")
    c.stop()
    try:
        doc = json.loads(world.lifeboat("--json", "health", env=env).stdout)
        (db,) = doc["sources"]
        states = {c["check"]: c["state"] for c in db["checks"]}
        assert states["cluster"] == "UNKNOWN" and states["rpo"] == "OK"
        assert doc["state"] == "UNKNOWN" and doc["exit_code"] == 3
    finally:
        c.start()
