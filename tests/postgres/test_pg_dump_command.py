"""Logical dumps the way docs/postgres.md shows them: ``backup command -- pg_dump -Fc`` of a real
cluster, restored with ``restore command -- pg_restore``; a failing pg_dump saves nothing."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from lifeboat.sources.tools.pg import find_program
from lifeboat.sources.tools.pgcluster import chown_tree, free_port
from tests.postgres.conftest import WorldFactory

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-dump-command")]


def test_pg_dump_round_trips_through_backup_command_and_restore_command(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE DATABASE appdb")
    c.psql(
        "CREATE TABLE orders (id int PRIMARY KEY, note text);"
        "INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 20000) g",
        dbname="appdb",
    )
    connect = ["-h", str(c.socket_dir), "-p", str(c.port), "-U", "postgres"]
    pg_dump, pg_restore = find_program("pg_dump"), find_program("pg_restore")

    done = world.lifeboat(
        "--json", "backup", "command", "--name", "appdb", "--", pg_dump, "-Fc", "-v", *connect, "appdb"
    )
    assert done.code == 0, done
    snapshot = json.loads(done.stdout)["snapshot"]
    assert snapshot["kind"] == "command" and snapshot["source"] == "appdb"
    assert "pg_dump: dumping contents of table" in snapshot["extra"]["command"]["stderr"]  # -v messages kept

    c.psql("CREATE DATABASE restored")
    restored = world.lifeboat(
        "restore", "command", "latest", "--source", "appdb", "--", pg_restore, *connect, "-d", "restored"
    )
    assert restored.code == 0, restored
    assert c.psql("SELECT count(*), sum(id), max(note) FROM orders", dbname="restored") == c.psql(
        "SELECT count(*), sum(id), max(note) FROM orders", dbname="appdb"
    )

    hashed = world.lifeboat("restore", "command", "latest", "--source", "appdb", "--", "sha256sum")
    dumped = world.lifeboat("dump", "latest", "appdb")
    assert hashed.code == 0 and dumped.code == 0
    assert hashed.stdout.split()[0] == hashlib.sha256(dumped.stdout_bytes).hexdigest()
    assert dumped.stdout_bytes.startswith(b"PGDMP")


def test_a_failing_pg_dump_is_exit_16_and_saves_no_snapshot(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    connect = ["-h", str(c.socket_dir), "-p", str(c.port), "-U", "postgres"]
    before = json.loads(world.lifeboat("--json", "snapshots").stdout)
    failed = world.lifeboat(
        "backup", "command", "--name", "appdb", "--", find_program("pg_dump"), "-Fc", *connect, "no_such_db"
    )
    assert failed.code == 16, failed
    assert "failed (exit status 1)" in failed.stderr and 'database "no_such_db" does not exist' in failed.stderr
    assert json.loads(world.lifeboat("--json", "snapshots").stdout) == before


def test_backup_and_restore_source_dispatch_every_configured_kind(worlds: WorldFactory, tmp_path: Path) -> None:
    """``backup --source NAME`` backs up a postgres and a command source alike, through the
    registry; ``restore --source NAME`` streams into the configured consumer."""
    world = worlds()
    c = world.cluster
    c.psql("CREATE DATABASE appdb")
    c.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 500)", dbname="appdb")
    c.psql("CREATE DATABASE restored")
    connect = ["-h", str(c.socket_dir), "-p", str(c.port), "-U", "postgres"]
    config = world.base / "lifeboat.yaml"  # the server reads it too: its restore_command fetches WAL
    config.write_text(
        json.dumps(
            {
                "repositories": {"main": {"url": str(world.repo_dir), "password_file": str(world.password_file)}},
                "sources": {
                    "cluster": {
                        "type": "postgres",
                        "data_directory": str(c.data_dir),
                        "host": str(c.socket_dir),
                        "port": c.port,
                        "user": "postgres",
                        "archive_wait": "60s",
                        "tags": ["physical"],
                    },
                    "appdb": {
                        "type": "command",
                        "command": [find_program("pg_dump"), "-Fc", *connect, "appdb"],
                        "restore_command": [find_program("pg_restore"), *connect, "-d", "restored"],
                    },
                },
            }
        )
    )
    env = {"LIFEBOAT_CONFIG": str(config), "LIFEBOAT_REPO": ""}
    physical = world.lifeboat("--json", "backup", "--source", "cluster", env=env)
    assert physical.code == 0, physical
    document = json.loads(physical.stdout)
    assert (document["snapshot"]["kind"], document["snapshot"]["source"]) == ("postgres", "cluster")
    assert document["snapshot"]["tags"] == ["physical"] and document["postgres"]["system_id"]
    text = world.lifeboat("backup", "--source", "cluster", env=env)
    assert text.code == 0, text
    assert "PostgreSQL 15" in text.stdout and "databases: " in text.stdout  # the kind's own lines

    logical = world.lifeboat("--json", "backup", "--source", "appdb", env=env)
    assert logical.code == 0, logical
    assert json.loads(logical.stdout)["snapshot"]["kind"] == "command"
    refused = world.lifeboat("backup", "--source", "appdb", "/etc", env=env)
    assert refused.code == 2 and "source 'appdb' is a command source: it takes no paths" in refused.stderr

    restored = world.lifeboat("restore", "--source", "appdb", "latest", env=env)
    assert restored.code == 0, restored
    assert c.psql("SELECT count(*), sum(id) FROM t", dbname="restored") == "500|125250"
    # A postgres source is restored by point-in-time recovery into a data directory: without
    # one it says so; with one it runs restore postgres's use case with its defaults (latest).
    missing = world.lifeboat("restore", "--source", "cluster", "latest", env=env)
    assert missing.code == 2 and "--target" in missing.stderr and "restore postgres" in missing.stderr, missing
    c.psql("CREATE TABLE later (id int); INSERT INTO later SELECT generate_series(1, 7)", dbname="appdb")
    world.wait_archived(world.switch_wal())  # WAL after the base backup, which latest must replay
    target = world.new_dir("by-source")
    pitr = world.lifeboat("restore", "--source", "cluster", "latest", "--target", str(target), env=env)
    assert pitr.code == 0, pitr
    assert "restored base backup" in pitr.stdout and "recovery target: latest" in pitr.stdout, pitr
    copy = world.restored(target, free_port())
    copy.configure({"port": str(copy.port)})  # beside the running original
    copy.log.parent.mkdir(parents=True)
    chown_tree(copy.log.parent, copy.os_user)
    copy.start()
    deadline = time.monotonic() + 120
    while copy.psql("SELECT pg_is_in_recovery()") != "f":  # replaying the archived WAL, then promoted
        assert time.monotonic() < deadline, "the restored cluster did not finish recovery"
        time.sleep(0.2)
    assert copy.psql("SELECT count(*), sum(id) FROM t", dbname="appdb") == "500|125250"
    assert copy.psql("SELECT count(*) FROM later", dbname="appdb") == "7"
    busy = world.lifeboat("restore", "--source", "cluster", "latest", "--target", str(target), env=env)
    assert busy.code != 0 and "running server" in busy.stderr and "--force" in busy.stderr, busy
