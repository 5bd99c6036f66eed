"""Logical dumps the way docs/postgres.md shows them: ``backup command -- pg_dump -Fc`` of a real
cluster, restored with ``restore command -- pg_restore``; a failing pg_dump saves nothing."""

from __future__ import annotations

import hashlib
import json

import pytest

from lifeboat.sources.tools.pg import find_program
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
