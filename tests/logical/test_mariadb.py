"""The mariadb source against a real MariaDB server: logical backups (mariadb-dump per
database) restored row-identical — a whole database, under another name, one table — and
physical backups (mariabackup) restored into an empty data directory a second server starts
on; failing producers save no snapshot; verify tells a whole dump from a cut one; the
password never reaches a command line."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat.sources.mariadb.dumpfile import TableFilter, dump_problems
from lifeboat.sources.mariadb.xbstream import XbstreamReader
from tests.conftest import CliResult, run_cli
from tests.servers.mariadb import MariadbServer, mariadb_server, new_directory, start_server

__all__ = ["mariadb_server"]  # the session fixture, used by name

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mariadb")]

SHOP_ROWS = "SELECT id, name, price, HEX(note) FROM shop.items ORDER BY id"


@pytest.fixture(scope="module")
def loaded(mariadb_server: MariadbServer) -> MariadbServer:
    """Two databases: shop (a table with a trigger, a second table, a function) and crm."""
    s = mariadb_server
    s.sql(
        "DROP DATABASE IF EXISTS shop; DROP DATABASE IF EXISTS crm; "
        "CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; CREATE DATABASE crm;"
    )
    s.sql(
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(8,2), note BLOB);"
        "CREATE TABLE audit (item INT, at VARCHAR(20));"
        "CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW INSERT INTO audit VALUES (NEW.id, 'insert');"
        "CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;"
        "INSERT INTO items VALUES (1, 'apple', 1.25, 0x00ff10), (2, 'pear \\'n\\' tab\\t', 2.50, NULL), "
        "(3, 'ünïcode ☃', 100.00, 'x');",
        database="shop",
    )
    s.sql(
        "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(80)); "
        "INSERT INTO people SELECT seq, CONCAT('p', seq, '@example.org') FROM seq_1_to_500;",
        database="crm",
    )
    return s


@dataclass
class World:
    server: MariadbServer
    directory: Path
    env: dict[str, str]

    def lifeboat(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        return run_cli(*args, env={**self.env, **(env or {})})

    def backup(self, source: str = "db", *args: str, env: dict[str, str] | None = None) -> CliResult:
        return self.lifeboat("--json", "backup", "--source", source, *args, env=env)

    def snapshots(self) -> list[dict[str, object]]:
        done = self.lifeboat("--json", "snapshots")
        assert done.code == 0, done
        document = json.loads(done.stdout)
        return list(document["snapshots"] if isinstance(document, dict) else document)


def write_config(directory: Path, server: MariadbServer, **sources: dict[str, object]) -> Path:
    config = directory / "lifeboat.yaml"
    config.write_text(
        json.dumps(
            {
                "repositories": {
                    "main": {"url": str(directory / "repo"), "password_file": str(directory / "passphrase")}
                },
                "sources": sources,
            }
        )
    )
    return config


@pytest.fixture
def world(loaded: MariadbServer) -> Iterator[World]:
    directory = Path(new_directory("mdbt."))
    (directory / "passphrase").write_text("correct horse battery staple\n")
    password_file = directory / "db-password"
    password_file.write_text(loaded.password + "\n")
    password_file.chmod(0o600)
    connection = {"host": "127.0.0.1", "port": loaded.port, "user": "root", "password_file": str(password_file)}
    config = write_config(
        directory,
        loaded,
        db={"type": "mariadb", **connection, "databases": ["shop", "crm"]},
        alldb={"type": "mariadb", **connection, "exclude_databases": ["crm"]},
        phys={
            "type": "mariadb",
            "method": "physical",
            "socket": loaded.socket,
            "user": "root",
            "password_env": "TEST_MARIADB_PASSWORD",
        },
        wrongpw={"type": "mariadb", **connection, "password_file": str(directory / "passphrase")},
        nodb={"type": "mariadb", **connection, "databases": ["shop", "no_such_db"]},
        nopwfile={"type": "mariadb", **connection, "password_file": str(directory / "missing.pass")},
        dbenv={
            "type": "mariadb",
            **connection,
            "password_file": None,
            "password_env": "TEST_MARIADB_PASSWORD",
            "databases": ["shop", "crm"],
        },
    )
    env = {
        "LIFEBOAT_CONFIG": str(config),
        "LIFEBOAT_REPO": "",
        "LIFEBOAT_PASSWORD_FILE": "",
        "TEST_MARIADB_PASSWORD": loaded.password,
    }
    for name in ("LIFEBOAT_PASSWORD", "LIFEBOAT_PASSWORD_COMMAND"):
        os.environ.pop(name, None)
    w = World(loaded, directory, env)
    init = w.lifeboat("init")
    assert init.code == 0, init
    yield w
    shutil.rmtree(directory, ignore_errors=True)


def drop(server: MariadbServer, *names: str) -> None:
    server.sql("; ".join(f"DROP DATABASE IF EXISTS `{name}`" for name in names))


# --- logical ---------------------------------------------------------------------------------


def test_logical_round_trip_is_row_identical_with_routines_and_triggers(world: World) -> None:
    s = world.server
    before_items, before_people = s.rows(SHOP_ROWS), s.rows("SELECT * FROM crm.people ORDER BY id")
    done = world.backup()
    assert done.code == 0, done
    snapshot = json.loads(done.stdout)["snapshot"]
    record = snapshot["extra"]["mariadb"]
    assert snapshot["kind"] == "mariadb" and record["method"] == "logical"
    assert record["server_version"].startswith("10.11") and record["binlog"] == "on"
    assert set(record["databases"]) == {"shop", "crm"}
    position = record["databases"]["shop"]["binlog"]
    assert position["file"].startswith("binlog.") and int(position["position"]) > 0
    text = world.lifeboat("backup", "--source", "db")
    assert text.code == 0 and "MariaDB 10.11" in text.stdout and "databases: crm, shop" in text.stdout, text
    listed = world.lifeboat("ls", snapshot["id"])
    assert "shop.sql" in listed.stdout and "crm.sql" in listed.stdout, listed

    drop(s, "shop", "crm")
    for database in ("shop", "crm"):
        restored = world.lifeboat("restore", "mariadb", "latest", "--source", "db", "--database", database)
        assert restored.code == 0, restored
        assert f"restored database '{database}'" in restored.stdout
        position = record["databases"][database]["binlog"]
        assert f"mariadb-binlog --start-position={position['position']} --database={database}" in restored.stdout
    assert s.rows(SHOP_ROWS) == before_items
    assert s.rows("SELECT * FROM crm.people ORDER BY id") == before_people
    assert s.rows("SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='shop'") == [
        ("utf8mb4_unicode_ci",)
    ]
    # the routine and the trigger came back with the data
    assert s.rows("SELECT shop.twice(21)") == [("42",)]
    s.sql("INSERT INTO items VALUES (4, 'fig', 3, NULL)", database="shop")
    assert ("4", "insert") in s.rows("SELECT item, at FROM shop.audit")
    s.sql("DELETE FROM items WHERE id = 4; DELETE FROM audit WHERE item = 4", database="shop")


def test_restore_refuses_an_existing_database_without_force(world: World) -> None:
    s = world.server
    assert world.backup().code == 0
    s.sql("UPDATE items SET name = 'changed' WHERE id = 1", database="shop")
    refused = world.lifeboat("restore", "mariadb", "latest", "-s", "db", "--database", "shop")
    assert refused.code == 1, refused
    assert "database 'shop' already exists" in refused.stderr and "--force" in refused.stderr
    assert s.rows("SELECT name FROM shop.items WHERE id = 1") == [("changed",)]  # untouched
    forced = world.lifeboat("restore", "mariadb", "latest", "-s", "db", "--database", "shop", "--force")
    assert forced.code == 0, forced
    assert s.rows("SELECT name FROM shop.items WHERE id = 1") == [("apple",)]


def test_restore_as_another_database_and_one_table(world: World) -> None:
    s = world.server
    drop(s, "shop_copy", "elsewhere")
    assert world.backup().code == 0
    copied = world.lifeboat("restore", "mariadb", "latest", "-s", "db", "-d", "shop", "--as", "shop_copy")
    assert copied.code == 0, copied
    assert s.rows(SHOP_ROWS.replace("shop.", "shop_copy.")) == s.rows(SHOP_ROWS)
    assert s.rows("SELECT shop_copy.twice(2)") == [("4",)]

    one = world.lifeboat(
        "restore", "mariadb", "latest", "-s", "db", "-d", "shop", "--table", "items", "--as", "elsewhere"
    )
    assert one.code == 0, one
    assert s.rows(SHOP_ROWS.replace("shop.", "elsewhere.")) == s.rows(SHOP_ROWS)
    assert s.rows("SHOW TABLES FROM elsewhere") == [("items",)]  # only that table
    # its trigger came with it (it refers to audit, which was not restored: the insert fails)
    assert s.rows("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='elsewhere'") == [
        ("items_audit",)
    ]
    again = world.lifeboat(
        "restore", "mariadb", "latest", "-s", "db", "-d", "shop", "--table", "items", "--as", "elsewhere"
    )
    assert again.code == 1 and "table 'items' already exists in database 'elsewhere'" in again.stderr, again
    missing = world.lifeboat("restore", "mariadb", "latest", "-s", "db", "-d", "shop", "--table", "nope", "--sql", "-")
    assert missing.code != 0 and "holds no table 'nope'" in missing.stderr, missing
    into_new = world.lifeboat("restore", "mariadb", "latest", "-s", "db", "-d", "shop", "--table", "nope", "--as", "n2")
    assert into_new.code != 0 and "holds no table 'nope'" in into_new.stderr, into_new
    assert s.rows("SHOW DATABASES LIKE 'n2'") == []  # not left behind
    drop(s, "shop_copy", "elsewhere")


def test_sql_output_and_all_databases_but_the_excluded(world: World) -> None:
    done = world.backup("alldb")
    assert done.code == 0, done
    assert set(json.loads(done.stdout)["snapshot"]["extra"]["mariadb"]["databases"]) == {"shop"}
    sql = world.directory / "shop.sql"
    written = world.lifeboat("restore", "mariadb", "latest", "-s", "alldb", "--sql", str(sql))
    assert written.code == 0, written
    text = sql.read_text()
    assert "CREATE TABLE `items`" in text and text.rstrip().splitlines()[-1].startswith("-- Dump completed")
    table = world.lifeboat("restore", "mariadb", "latest", "-s", "alldb", "--table", "audit", "--sql", "-")
    assert table.code == 0, table
    assert "CREATE TABLE `audit`" in table.stdout and "CREATE TABLE `items`" not in table.stdout


def test_failing_producers_save_no_snapshot(world: World) -> None:
    wrong = world.backup("wrongpw")
    assert wrong.code == 16, wrong
    assert "Access denied" in wrong.stderr
    missing = world.backup("nodb")
    assert missing.code == 16, missing
    assert "database 'no_such_db' does not exist" in missing.stderr
    no_file = world.backup("nopwfile")
    assert no_file.code == 16 and "cannot read the MariaDB password file" in no_file.stderr, no_file
    assert world.snapshots() == []


def test_verify_passes_and_the_password_is_never_on_a_command_line(world: World) -> None:
    # A mariadb-dump that records its argv and environment before doing its work; the source
    # reads its password from a variable, which the programs must not inherit either.
    spy_dir = world.directory / "spy"
    spy_dir.mkdir()
    seen = world.directory / "seen"
    real = shutil.which("mariadb-dump")
    assert real
    spy = spy_dir / "mariadb-dump"
    spy.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {seen}\nenv >> {seen}\nexec {real} "$@"\n')
    spy.chmod(0o755)
    done = world.backup("dbenv", env={"PATH": f"{spy_dir}:{os.environ['PATH']}"})
    assert done.code == 0, done
    recorded = seen.read_text()
    assert recorded.count("--single-transaction") == 2  # it ran, once per database
    assert world.server.password not in recorded
    assert world.server.password not in done.stdout + done.stderr
    options = [line for line in recorded.splitlines() if line.startswith("--defaults-extra-file=")]
    assert options and all(not Path(line.split("=", 1)[1]).exists() for line in options)  # removed afterwards

    verified = world.lifeboat("verify", "--source", "dbenv")
    assert verified.code == 0, verified
    assert "2 mariadb-dump file(s) whole" in verified.stdout + verified.stderr


def test_a_dump_cut_short_is_refused_and_the_checks_see_it(world: World) -> None:
    # A mariadb-dump whose output is cut short but which exits 0 (as a full disk behind a
    # pipe might leave it): the backup refuses it.
    spy_dir = world.directory / "cut"
    spy_dir.mkdir()
    real = shutil.which("mariadb-dump")
    spy = spy_dir / "mariadb-dump"
    spy.write_text(f'#!/bin/sh\n{real} "$@" | head -c 2000\n')
    spy.chmod(0o755)
    cut = world.backup("db", env={"PATH": f"{spy_dir}:{os.environ['PATH']}"})
    assert cut.code == 16 and "Dump completed" in cut.stderr, cut
    assert world.snapshots() == []

    whole = (b"-- MariaDB dump 10.19\n--\n" + b"INSERT INTO t VALUES (1);\n" * 1000, b"-- Dump completed on x\n")
    assert dump_problems("t.sql", whole[0], whole[0] + whole[1]) == []
    problems = dump_problems("t.sql", whole[0], whole[0][:-7])
    assert problems == ["t.sql: does not end with mariadb-dump's '-- Dump completed' line (cut short)"]
    assert dump_problems("t.sql", b"garbage", whole[1]) == ["t.sql: does not start with mariadb-dump's header"]


def test_the_table_filter_keeps_one_tables_sections() -> None:
    dump = (
        b"-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\n--\n-- Table structure for table `a`\n--\n"
        b"CREATE TABLE `a` (x int);\n--\n-- Dumping data for table `a`\n--\nINSERT INTO `a` VALUES (1);\n"
        b"--\n-- Table structure for table `b``c`\n--\nCREATE TABLE `b``c` (y int);\n"
        b"--\n-- Dumping routines for database 'd'\n--\nCREATE FUNCTION f() RETURNS INT RETURN 1;\n"
        b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n-- Dump completed\n"
    )
    pieces = [dump[i : i + 7] for i in range(0, len(dump), 7)]  # lines split across pieces
    only_a = TableFilter("a")
    kept = b"".join(only_a.lines(pieces))
    assert only_a.found and b"CREATE TABLE `a`" in kept and b"INSERT INTO `a`" in kept
    assert b"`b``c`" not in kept and b"FUNCTION" not in kept
    assert kept.startswith(b"-- MariaDB dump\n/*!40101 SET NAMES") and kept.endswith(b"-- Dump completed\n")
    odd = TableFilter("b`c")
    assert b"CREATE TABLE `b``c`" in b"".join(odd.lines(pieces)) and odd.found
    nothing = TableFilter("zzz")
    b"".join(nothing.lines(pieces))
    assert not nothing.found


# --- physical --------------------------------------------------------------------------------


def test_physical_round_trip_into_an_empty_directory_a_second_server_starts_on(world: World) -> None:
    s = world.server
    before = s.rows(SHOP_ROWS)
    done = world.backup("phys")
    assert done.code == 0, done
    record = json.loads(done.stdout)["snapshot"]["extra"]["mariadb"]
    assert record["method"] == "physical" and record["checkpoints"]["backup_type"] == "full-backuped"
    assert record["binlog"]["file"].startswith("binlog.") and int(record["binlog"]["position"]) > 0
    verified = world.lifeboat("verify", "--source", "phys")
    assert verified.code == 0, verified

    target_parent = new_directory("mdbr.")
    target = target_parent / "data"
    target.mkdir()
    shutil.chown(target, "srvtest", "srvtest")
    (target / "stray").write_text("x")
    refused = world.lifeboat("restore", "mariadb", "latest", "-s", "phys", "--target-dir", str(target))
    assert refused.code == 1 and "is not empty" in refused.stderr, refused
    (target / "stray").unlink()
    restored = world.lifeboat("restore", "mariadb", "latest", "-s", "phys", "--target-dir", str(target))
    assert restored.code == 0, restored
    assert f"binlog position {record['binlog']['file']}:{record['binlog']['position']}" in restored.stdout
    assert (target / "xtrabackup_binlog_info").exists()
    assert stat.S_IMODE(os.stat(target).st_mode) and os.stat(target / "ibdata1").st_uid == os.stat(target).st_uid
    second = start_server(target_parent, target, binlog=False)
    try:
        second.password = s.password
        assert second.rows(SHOP_ROWS) == before
        assert second.rows("SELECT shop.twice(5)") == [("10",)]
        # the restored server runs without a binary log: a logical backup of it records that
        config = world.directory / "second.yaml"
        config.write_text(
            json.dumps(
                {
                    "repositories": {
                        "main": {
                            "url": str(world.directory / "repo"),
                            "password_file": str(world.directory / "passphrase"),
                        }
                    },
                    "sources": {
                        "second": {
                            "type": "mariadb",
                            "socket": second.socket,
                            "user": "root",
                            "password_env": "TEST_MARIADB_PASSWORD",
                            "databases": ["shop"],
                        }
                    },
                }
            )
        )
        logical = world.backup("second", env={"LIFEBOAT_CONFIG": str(config)})
        assert logical.code == 0, logical
        off = json.loads(logical.stdout)["snapshot"]["extra"]["mariadb"]
        assert off["binlog"] == "off" and "binlog" not in off["databases"]["shop"]
    finally:
        second.stop()
        shutil.rmtree(target_parent, ignore_errors=True)


def test_a_logical_snapshot_does_not_restore_into_a_directory(world: World) -> None:
    assert world.backup().code == 0
    wrong = world.lifeboat("restore", "mariadb", "latest", "-s", "db", "--target-dir", str(world.directory / "x"))
    assert wrong.code == 2 and "logical MariaDB backup" in wrong.stderr, wrong


def test_the_xbstream_reader_sees_damage(world: World) -> None:
    # the server's own stream, read whole and then cut and flipped
    done = world.backup("phys")
    assert done.code == 0, done
    dumped = world.lifeboat("dump", "latest", "backup.xbstream")
    data = dumped.stdout_bytes
    whole = XbstreamReader()
    for i in range(0, len(data), 100_000):
        whole.feed(data[i : i + 100_000])
    whole.end()
    assert not whole.problems and whole.binlog_position() is not None
    cut = XbstreamReader()
    cut.feed(data[: len(data) // 2])
    cut.end()
    assert cut.problems and "cut short" in cut.problems[0]
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    damaged = XbstreamReader()
    damaged.feed(bytes(flipped))
    damaged.end()
    assert damaged.problems


def save_cut_copy(world: World, snapshot: dict[str, object], name: str, keep: float) -> None:
    """Save, beside ``snapshot``, a snapshot of the same source and record whose file ``name``
    is cut to ``keep`` of its length — the damage a producer cut short would leave."""
    import io
    import socket

    from lifeboat.operations.snapshots import SourceBackup, run_backup
    from lifeboat.repository.repo import Repository
    from lifeboat.sources.stream import StreamRequest, StreamSource
    from lifeboat.storage.local import LocalBackend

    whole = world.lifeboat("dump", str(snapshot["id"]), name).stdout_bytes
    repo = Repository.open(LocalBackend(world.directory / "repo"), b"correct horse battery staple")
    request = StreamRequest(
        io.BytesIO(whole[: int(len(whole) * keep)]),
        name,
        source=str(snapshot["source"]),
        kind="mariadb",
        extra=dict(snapshot["extra"]),  # type: ignore[call-overload]
    )
    job = SourceBackup(StreamSource(), request, hostname=socket.gethostname(), workers=2, label="cut")
    run_backup(repo, job)


def test_verify_fails_on_a_cut_dump_and_a_cut_stream(world: World) -> None:
    done = world.backup("alldb")  # shop only
    assert done.code == 0, done
    save_cut_copy(world, json.loads(done.stdout)["snapshot"], "shop.sql", 0.6)
    failed = world.lifeboat("verify", "--source", "alldb")
    assert failed.code == 13, failed
    assert (
        "shop.sql: does not end with mariadb-dump's '-- Dump completed' line (cut short)"
        in failed.stdout + failed.stderr
    )

    physical = world.backup("phys")
    assert physical.code == 0, physical
    save_cut_copy(world, json.loads(physical.stdout)["snapshot"], "backup.xbstream", 0.5)
    cut = world.lifeboat("verify", "--source", "phys")
    assert cut.code == 13, cut
    assert "backup.xbstream: the stream ends inside a chunk" in cut.stdout + cut.stderr


def test_the_documented_binlog_replay_brings_a_physical_restore_up_to_date(world: World) -> None:
    """docs/sources.md's point-in-time steps, run: restore, start, replay from the recorded position."""
    import subprocess

    s = world.server
    done = world.backup("phys")
    assert done.code == 0, done
    position = json.loads(done.stdout)["snapshot"]["extra"]["mariadb"]["binlog"]
    s.sql("INSERT INTO items VALUES (100, 'after the backup', 9.99, NULL)", database="shop")
    s.sql("FLUSH BINARY LOGS")  # the replay reads closed files, as copied off a server
    later = sorted(p for p in s.datadir.glob("binlog.[0-9]*") if p.name >= position["file"])

    target_parent = new_directory("mdbp.")
    target = target_parent / "data"
    target.mkdir()
    shutil.chown(target, "srvtest", "srvtest")
    restored = world.lifeboat("restore", "mariadb", "latest", "-s", "phys", "--target-dir", str(target))
    assert restored.code == 0, restored
    assert f"mariadb-binlog --start-position={position['position']} {position['file']}" in restored.stdout
    second = start_server(target_parent, target, binlog=False)
    try:
        second.password = s.password
        assert second.rows("SELECT COUNT(*) FROM shop.items WHERE id = 100") == [("0",)]
        binlog = subprocess.run(
            [
                shutil.which("mariadb-binlog") or "mariadb-binlog",
                "--no-defaults",
                f"--start-position={position['position']}",
                *map(str, later),
            ],
            capture_output=True,
            check=True,
        )
        subprocess.run(
            [shutil.which("mariadb") or "mariadb", f"--defaults-extra-file={second.client_options}"],
            input=binlog.stdout,
            capture_output=True,
            check=True,
        )
        assert second.rows("SELECT name FROM shop.items WHERE id = 100") == [("after the backup",)]
        assert second.rows(SHOP_ROWS) == s.rows(SHOP_ROWS)
    finally:
        second.stop()
        s.sql("DELETE FROM items WHERE id = 100; DELETE FROM audit WHERE item = 100", database="shop")
        shutil.rmtree(target_parent, ignore_errors=True)
