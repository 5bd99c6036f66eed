"""The sqlite source as a user runs it: ``backup --source`` of database files (one being
written meanwhile), ``restore sqlite`` to a file or below a directory, ``verify`` with
PRAGMA integrity_check; a missing or foreign file saves nothing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lifeboat.sources.sqlite.copy import integrity_problems
from tests.conftest import Cli, CliResult

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sqlite")]

Run = Callable[..., CliResult]


def make_db(path: Path, *, rows: int = 1000, wal: bool = False) -> None:
    with sqlite3.connect(path) as db:
        if wal:
            db.execute("PRAGMA journal_mode=wal")
        db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, payload BLOB)")
        db.execute("CREATE INDEX items_name ON items(name)")
        db.executemany(
            "INSERT INTO items (name, payload) VALUES (?, ?)",
            ((f"item {i}", bytes([i % 256]) * 300) for i in range(rows)),
        )
    db.close()


def dump(path: Path) -> list[str]:
    """The database as SQL: what a user compares."""
    with sqlite3.connect(path) as db:
        lines = list(db.iterdump())
    db.close()
    return lines


@pytest.fixture
def world(cli: Cli, tmp_path: Path) -> tuple[Run, Path, Path]:
    """An initialised repository, databases under tmp_path/srv, and a configuration naming
    the source ``app`` (two databases, one in WAL mode) and ``broken`` (a missing file)."""
    assert cli("init", "--kdf-memory", "8MiB").code == 0
    srv = tmp_path / "srv"
    (srv / "data").mkdir(parents=True)
    make_db(srv / "data" / "app.db", rows=2000, wal=True)
    make_db(srv / "users.db", rows=10)
    config = tmp_path / "lifeboat.yaml"
    config.write_text(
        json.dumps(
            {
                "sources": {
                    "app": {"type": "sqlite", "paths": [str(srv / "data" / "app.db"), str(srv / "users.db")]},
                    "broken": {"type": "sqlite", "paths": [str(srv / "missing.db")]},
                    "foreign": {"type": "sqlite", "paths": [str(srv / "notes.txt")]},
                }
            }
        )
    )

    def run(*args: str) -> CliResult:
        return cli(*args, env={"LIFEBOAT_CONFIG": str(config)})

    return run, srv, tmp_path


def snapshot_count(run: Run) -> int:
    listed = run("--json", "snapshots")
    assert listed.code == 0, listed
    return len(json.loads(listed.stdout))


def test_databases_round_trip_below_a_directory_and_to_a_file(world: tuple[Run, Path, Path]) -> None:
    run, srv, tmp = world
    backed = run("--json", "backup", "--source", "app")
    assert backed.code == 0, backed
    snapshot = json.loads(backed.stdout)["snapshot"]
    assert snapshot["kind"] == "sqlite"
    record = {db["path"]: db for db in snapshot["extra"]["sqlite"]["databases"]}
    assert set(record) == {str(srv / "data" / "app.db"), str(srv / "users.db")}
    assert record[str(srv / "users.db")]["tables"] == 1 and record[str(srv / "users.db")]["integrity"] == "ok"

    target = tmp / "restored"
    restored = run("restore", "sqlite", "latest", "--target-dir", str(target))
    assert restored.code == 0, restored
    assert "restored 2 SQLite database(s)" in restored.stdout and "integrity ok" in restored.stdout
    for original in (srv / "data" / "app.db", srv / "users.db"):
        copy = target / str(original).lstrip("/")
        assert dump(copy) == dump(original)
        assert integrity_problems(str(copy)) == []

    one = tmp / "one.db"
    single = run("restore", "sqlite", "latest", "--to", str(one), "--database", str(srv / "users.db"))
    assert single.code == 0, single
    assert dump(one) == dump(srv / "users.db")
    ambiguous = run("restore", "sqlite", "latest", "--to", str(tmp / "two.db"))
    assert ambiguous.code == 2 and "holds 2 databases" in ambiguous.stderr and "--database" in ambiguous.stderr
    assert not (tmp / "two.db").exists()


def test_restore_refuses_an_existing_database_without_force(world: tuple[Run, Path, Path]) -> None:
    run, srv, tmp = world
    assert run("backup", "--source", "app").code == 0
    existing = tmp / "live.db"
    make_db(existing, rows=3)
    before = dump(existing)
    refused = run("restore", "sqlite", "latest", "--to", str(existing), "--database", str(srv / "users.db"))
    assert refused.code == 1, refused
    assert f"{existing} exists" in refused.stderr and "--force" in refused.stderr
    assert dump(existing) == before
    forced = run("restore", "sqlite", "latest", "--to", str(existing), "--database", str(srv / "users.db"), "--force")
    assert forced.code == 0, forced
    assert dump(existing) == dump(srv / "users.db")


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_database_written_during_the_backup_restores_a_committed_state(
    world: tuple[Run, Path, Path], journal: str
) -> None:
    """Another process commits batches of 50 rows and a counter, as fast as it can, while
    backups run: each restored copy holds whole batches and a counter that matches them."""
    run, srv, tmp = world
    busy = srv / "data" / "app.db"
    with sqlite3.connect(busy) as db:
        db.execute(f"PRAGMA journal_mode={journal}")
        db.execute("CREATE TABLE ledger (batch INTEGER, n INTEGER)")
        db.execute("CREATE TABLE counter (total INTEGER)")
        db.execute("INSERT INTO counter VALUES (0)")
    db.close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(busy)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == b"writing"
        for _ in range(3):
            backed = run("backup", "--source", "app")
            assert backed.code == 0, backed
    finally:
        writer.terminate()
        writer.wait(30)
    with sqlite3.connect(busy) as db:
        final = db.execute("SELECT total FROM counter").fetchone()[0]
    db.close()
    listed = json.loads(run("--json", "snapshots").stdout)
    totals = []
    for number, snapshot in enumerate(listed):
        target = tmp / f"r{number}.db"
        restored = run("restore", "sqlite", snapshot["id"], "--to", str(target), "--database", str(busy))
        assert restored.code == 0, restored
        assert integrity_problems(str(target)) == []
        with sqlite3.connect(target) as db:
            total = db.execute("SELECT total FROM counter").fetchone()[0]
            rows, batches = db.execute("SELECT count(*), count(DISTINCT batch) FROM ledger").fetchone()
            torn = db.execute("SELECT count(*) FROM (SELECT batch FROM ledger GROUP BY batch HAVING count(*) != 50)")
            assert torn.fetchone()[0] == 0
        db.close()
        assert rows == total == batches * 50
        totals.append(total)
    assert totals == sorted(totals) and totals[-1] > 0 and final >= totals[-1]


WRITER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
print("writing", flush=True)
batch = 0
while True:
    batch += 1
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO ledger VALUES (?, ?)", [(batch, i) for i in range(50)])
    db.execute("UPDATE counter SET total = total + 50")
    db.execute("COMMIT")
"""


def test_a_missing_database_is_exit_16_and_saves_no_snapshot(world: tuple[Run, Path, Path]) -> None:
    run, srv, _ = world
    failed = run("backup", "--source", "broken")
    assert failed.code == 16, failed
    assert f"{srv / 'missing.db'} does not exist" in failed.stderr
    assert snapshot_count(run) == 0


def test_a_file_that_is_not_a_database_is_exit_16_and_saves_no_snapshot(world: tuple[Run, Path, Path]) -> None:
    run, srv, _ = world
    (srv / "notes.txt").write_text("these are not the pages you are looking for\n" * 200)
    failed = run("backup", "--source", "foreign")
    assert failed.code == 16, failed
    assert "file is not a database" in failed.stderr and "no snapshot was saved" in failed.stderr
    assert snapshot_count(run) == 0


def test_verify_passes_and_reports_a_damaged_pack(world: tuple[Run, Path, Path]) -> None:
    run, _, tmp = world
    assert run("backup", "--source", "app").code == 0
    verified = run("verify", "--source", "app")
    assert verified.code == 0, verified
    assert "2 SQLite database(s) with PRAGMA integrity_check" in verified.stdout
    packs = sorted((p for p in (tmp / "repo" / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(packs[-1].read_bytes())
    data[len(data) // 2] ^= 0x40
    packs[-1].write_bytes(bytes(data))
    damaged = run("verify", "--source", "app")
    assert damaged.code == 13, damaged
    assert "app.db" in damaged.stdout + damaged.stderr


def test_integrity_check_finds_a_damaged_database(tmp_path: Path) -> None:
    db = tmp_path / "hurt.db"
    make_db(db, rows=3000)
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(5 * page + 8, 5 * page + 200):  # the cell area of a b-tree page
        data[offset] = 0xA5
    db.write_bytes(bytes(data))
    assert integrity_problems(str(db)) != []
    (tmp_path / "text.db").write_text("hello" * 1000)
    assert integrity_problems(str(tmp_path / "text.db")) == ["file is not a database"]


def test_latest_means_the_newest_sqlite_snapshot_and_another_kind_is_refused(world: tuple[Run, Path, Path]) -> None:
    run, srv, tmp = world
    assert run("backup", "--source", "app").code == 0
    files = run("--json", "backup", str(srv / "users.db"))  # a files snapshot, newer
    assert files.code == 0, files
    restored = run("restore", "sqlite", "latest", "--to", str(tmp / "u.db"), "--database", str(srv / "users.db"))
    assert restored.code == 0, restored
    assert dump(tmp / "u.db") == dump(srv / "users.db")
    other = json.loads(files.stdout)["snapshot"]["id"]
    refused = run("restore", "sqlite", other[:8], "--to", str(tmp / "x.db"))
    assert refused.code == 2 and "is a files snapshot, not a sqlite one" in refused.stderr, refused
