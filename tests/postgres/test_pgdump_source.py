"""The pg_dump source kind against real clusters: every database and the globals in one
snapshot, restored whole, renamed, one table, or as SQL; a failing pg_dump saves nothing;
verify reads each archive whole; day-over-day dumps share their unchanged chunks."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from lifeboat.config.model import PgDumpSourceConfig
from lifeboat.core.chunking import Chunker
from lifeboat.operations.snapshots import SourceBackup, run_backup
from lifeboat.sources.base import BackupContext, BackupOptions, Produced
from lifeboat.sources.pgdump.kind import PgDumpSource
from lifeboat.sources.tools.pgcluster import ScratchCluster
from tests.conftest import CliResult
from tests.postgres.conftest import PgWorld, WorldFactory

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-pgdump-source")]

SECRET = "pgdump-Secret-pw-7731"  # a PGPASSWORD in the source's env: never in argv, records or messages


@dataclass
class Setup:
    world: PgWorld
    config: Path
    other: ScratchCluster  # a second cluster to restore into

    @property
    def cluster(self) -> ScratchCluster:
        return self.world.cluster

    def env(self) -> dict[str, str]:
        return {"LIFEBOAT_CONFIG": str(self.config), "LIFEBOAT_REPO": ""}

    def lifeboat(self, *args: str) -> CliResult:
        return self.world.lifeboat(*args, env=self.env())

    def backup(self, source: str = "cluster") -> dict[str, Any]:
        done = self.lifeboat("--json", "backup", "--source", source)
        assert done.code == 0, done
        assert SECRET not in done.stdout + done.stderr
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    def snapshots(self) -> list[dict[str, Any]]:
        done = self.lifeboat("--json", "snapshots")
        assert done.code == 0, done
        listed: list[dict[str, Any]] = json.loads(done.stdout)
        return listed

    def restore(self, *args: str, into: ScratchCluster | None = None) -> CliResult:
        target = into or self.cluster
        connect = ["--host", str(target.socket_dir), "--port", str(target.port), "--user", "postgres"]
        return self.lifeboat("restore", "pg-dump", "latest", "--source", "cluster", *connect, *args)


def connection(cluster: ScratchCluster) -> dict[str, Any]:
    return {"host": str(cluster.socket_dir), "port": cluster.port, "user": "postgres"}


def write_config(world: PgWorld, sources: dict[str, Any]) -> Path:
    config = world.base / "lifeboat.yaml"
    config.write_text(
        json.dumps(
            {
                "repositories": {"main": {"url": str(world.repo_dir), "password_file": str(world.password_file)}},
                "sources": sources,
            }
        )
    )
    return config


@pytest.fixture(scope="module")
def setup(worlds: WorldFactory) -> Iterator[Setup]:
    world = worlds(settings={"archive_mode": "off"}, checksums=False)
    other = worlds(settings={"archive_mode": "off"}, checksums=False).cluster
    c = world.cluster
    c.psql("CREATE ROLE reporter LOGIN")
    for name in ("appdb", "shopdb"):
        c.psql(f"CREATE DATABASE {name}")
    c.psql(
        "CREATE TABLE orders (id int PRIMARY KEY, note text);"
        "INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 5000) g;"
        "CREATE TABLE customers (id int PRIMARY KEY, name text);"
        "INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 300) g;"
        "ALTER TABLE customers OWNER TO reporter",
        dbname="appdb",
    )
    c.psql(
        "CREATE SCHEMA shop; CREATE TABLE shop.items (id int, price numeric);"
        "INSERT INTO shop.items SELECT g, g * 1.5 FROM generate_series(1, 700) g",
        dbname="shopdb",
    )
    sources = {
        "cluster": {
            "type": "pg_dump",
            **connection(c),
            "exclude_databases": ["postgres"],
            "env": {"PGPASSWORD": SECRET},
        }
    }
    yield Setup(world, write_config(world, sources), other)


def rows(cluster: ScratchCluster, database: str, table: str) -> str:
    return cluster.psql(
        f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t", dbname=database
    )


def test_round_trip_of_two_databases_and_the_globals_into_another_cluster(setup: Setup) -> None:
    done = setup.backup()
    snapshot = done["snapshot"]
    assert snapshot["kind"] == "pg_dump" and snapshot["source"] == "cluster"
    record = snapshot["extra"]["pg_dump"]
    assert [db["name"] for db in record["databases"]] == ["appdb", "shopdb"]  # postgres excluded
    assert all(db["size"] > 0 and db["bytes"] > 0 for db in record["databases"])
    assert record["server_version"].startswith("15") and "pg_dump (PostgreSQL) 15" in record["pg_dump_version"]
    assert SECRET not in json.dumps(snapshot)
    listed = setup.lifeboat("ls", snapshot["id"])
    assert listed.code == 0 and {"globals.sql", "appdb.dump", "shopdb.dump"} <= {
        Path(line.split()[-1]).name for line in listed.stdout.splitlines() if line.strip()
    }, listed
    text = setup.lifeboat("backup", "--source", "cluster")  # the kind's own lines in the text summary
    assert text.code == 0, text
    assert "databases: appdb (" in text.stdout and "PostgreSQL 15" in text.stdout, text

    other = setup.other
    restored = setup.restore("--all", "--globals", into=other)
    assert restored.code == 0, restored
    assert "database appdb" in restored.stderr + restored.stdout
    for database, table in (("appdb", "orders"), ("appdb", "customers"), ("shopdb", "shop.items")):
        assert rows(other, database, table) == rows(setup.cluster, database, table)
    assert other.psql("SELECT rolname FROM pg_roles WHERE rolname = 'reporter'") == "reporter"
    assert other.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'customers'", dbname="appdb") == "reporter"


def test_one_table_into_another_database_and_a_database_under_a_new_name(setup: Setup) -> None:
    if not setup.snapshots():
        setup.backup()
    c = setup.cluster
    one = setup.restore("--database", "appdb", "--table", "orders", "--as", "orders_only")
    assert one.code == 0, one
    assert rows(c, "orders_only", "orders") == rows(c, "appdb", "orders")
    assert c.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'customers'", dbname="orders_only") == "0"

    renamed = setup.restore("--database", "appdb", "--as", "appdb_copy", "--jobs", "2")
    assert renamed.code == 0, renamed
    for table in ("orders", "customers"):
        assert rows(c, "appdb_copy", table) == rows(c, "appdb", table)

    schema = setup.restore("--database", "shopdb", "--schema", "shop", "--schema-only", "--as", "shop_empty")
    assert schema.code == 0, schema
    assert c.psql("SELECT count(*) FROM shop.items", dbname="shop_empty") == "0"

    missing = setup.restore("--database", "appdb", "--table", "no_such_table", "--as", "nothing_here")
    assert missing.code != 0 and "no_such_table" in missing.stderr, missing


def test_a_database_that_exists_is_refused_without_force(setup: Setup) -> None:
    if not setup.snapshots():
        setup.backup()
    c = setup.cluster
    refused = setup.restore("--database", "appdb")
    assert refused.code == 1, refused  # refused like every restore over something that exists (not a usage error)
    assert 'database "appdb" already exists' in refused.stderr
    assert "--force" in refused.stderr and "--as" in refused.stderr
    before = rows(c, "appdb", "orders")
    c.psql("DELETE FROM orders WHERE id > 100", dbname="appdb")
    forced = setup.restore("--database", "appdb", "--force", "--clean")
    assert forced.code == 0, forced
    assert rows(c, "appdb", "orders") == before

    # --create: pg_restore makes the database itself (its archived name), here after a drop
    c.psql("DROP DATABASE shopdb")
    created = setup.restore("--database", "shopdb", "--create")
    assert created.code == 0, created
    assert c.psql("SELECT count(*) FROM shop.items", dbname="shopdb") == "700"
    both = setup.restore("--database", "shopdb", "--create", "--as", "x")
    assert both.code == 2 and "--create" in both.stderr and "--as" in both.stderr, both

    # --data-only into the tables left empty by a --schema-only restore
    assert setup.restore("--database", "appdb", "--schema-only", "--as", "two_steps").code == 0
    assert c.psql("SELECT count(*) FROM orders", dbname="two_steps") == "0"
    refilled = setup.restore("--database", "appdb", "--data-only", "--as", "two_steps", "--force")
    assert refilled.code == 0, refilled
    assert rows(c, "two_steps", "orders") == before

    # a pg_restore that fails is never exit 0: the data again, into tables that hold it (keys clash)
    clash = setup.restore("--database", "appdb", "--data-only", "--as", "two_steps", "--force")
    assert clash.code == 16 and "duplicate key" in clash.stderr, clash
    assert rows(c, "two_steps", "orders") == before  # one transaction: nothing half-loaded


def test_sql_to_standard_output(setup: Setup) -> None:
    if not setup.snapshots():
        setup.backup()
    done = setup.lifeboat("restore", "pg-dump", "latest", "--source", "cluster", "--database", "shopdb", "--sql", "-")
    assert done.code == 0, done
    assert "CREATE TABLE shop.items" in done.stdout and "COPY shop.items" in done.stdout
    out = setup.world.base / "shopdb.sql"
    to_file = setup.lifeboat("restore", "pg-dump", "latest", "-s", "cluster", "-D", "shopdb", "--sql", str(out))
    assert to_file.code == 0 and "CREATE TABLE shop.items" in out.read_text(), to_file
    again = setup.lifeboat("restore", "pg-dump", "latest", "-s", "cluster", "-D", "shopdb", "--sql", str(out))
    assert again.code == 2 and f"{out} exists" in again.stderr and "--force" in again.stderr, again
    generic = setup.lifeboat("restore", "--source", "cluster", "latest")
    assert generic.code == 2 and "restore pg-dump" in generic.stderr, generic
    globals_sql = setup.lifeboat("dump", "latest", "globals.sql")
    assert globals_sql.code == 0 and "CREATE ROLE reporter" in globals_sql.stdout


def test_a_failing_producer_saves_no_snapshot(setup: Setup, worlds: WorldFactory) -> None:
    world = setup.world
    stopped = worlds(settings={"archive_mode": "off"}, checksums=False).cluster
    stopped.psql("CREATE DATABASE slow")
    stopped.psql(
        "CREATE TABLE t AS SELECT g AS id, md5(g::text) || md5(g::text) AS v FROM generate_series(1, 400000) g",
        dbname="slow",
    )
    config = write_config(
        world,
        {
            "cluster": {"type": "pg_dump", **connection(setup.cluster)},
            "missing": {"type": "pg_dump", **connection(setup.cluster), "databases": ["appdb", "no_such_db"]},
            "down": {"type": "pg_dump", **connection(stopped), "databases": ["slow"]},
        },
    )
    env = {"LIFEBOAT_CONFIG": str(config), "LIFEBOAT_REPO": ""}
    before = setup.snapshots()

    killed: list[int] = []
    stop = threading.Event()

    ours = str(stopped.socket_dir).encode()  # only the pg_dump this backup runs, never another one

    def kill_pg_dump() -> None:  # kill pg_dump as soon as it runs
        while not stop.is_set() and not killed:
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    words = cmdline.read_bytes().split(b"\0")
                except OSError:
                    continue
                if Path(words[0].decode(errors="replace")).name == "pg_dump" and ours in words:
                    os.kill(int(cmdline.parent.name), signal.SIGKILL)
                    killed.append(int(cmdline.parent.name))
                    break
            time.sleep(0.002)

    killer = threading.Thread(target=kill_pg_dump)
    killer.start()
    try:
        interrupted = world.lifeboat("backup", "--source", "down", env=env)
    finally:
        stop.set()
        killer.join()
    assert killed and interrupted.code == 16, interrupted
    assert "killed by SIGKILL" in interrupted.stderr, interrupted
    assert setup.snapshots() == before

    stopped.stop()
    missing = world.lifeboat("backup", "--source", "missing", env=env)
    assert missing.code == 16, missing
    assert 'database "no_such_db" does not exist' in missing.stderr
    down = world.lifeboat("backup", "--source", "down", env=env)
    assert down.code == 16, down
    assert "cannot query the PostgreSQL server" in down.stderr
    assert setup.snapshots() == before


class _FirstChunkOnly(Chunker):
    """A chunker that keeps only the first chunk of each stream and drains the rest: a dump cut
    short although pg_dump exited 0 — a fault no real backup produces, hence this stand-in."""

    def chunks(self, stream: BinaryIO, size_hint: int = -1) -> Iterator[memoryview]:
        for i, chunk in enumerate(super().chunks(stream, size_hint)):
            if i == 0:
                yield chunk


class _CutDumps(PgDumpSource):
    def backup(self, ctx: BackupContext, request: Any) -> Produced:
        real = ctx.chunker
        cutting = _FirstChunkOnly(real.min_size, real.avg_size, real.max_size, real.seed)
        return super().backup(replace(ctx, chunker=cutting), request)


def test_verify_reads_each_archive_and_finds_a_cut_or_damaged_one(setup: Setup, worlds: WorldFactory) -> None:
    world = worlds(settings={"archive_mode": "off"}, checksums=False)
    c = world.cluster
    c.psql("CREATE DATABASE big")
    c.psql("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g", dbname="big")
    settings = {**connection(c), "databases": ["big"]}
    config = write_config(world, {"big": {"type": "pg_dump", **settings}})
    env = {"LIFEBOAT_CONFIG": str(config), "LIFEBOAT_REPO": ""}
    backed_up = world.lifeboat("--json", "backup", "--source", "big", env=env)
    assert backed_up.code == 0, backed_up
    whole = json.loads(backed_up.stdout)["snapshot"]["id"]
    ok = world.lifeboat("--json", "verify", env=env)
    assert ok.code == 0, ok
    report = json.loads(ok.stdout)
    assert report["verified"] == 1 and report["failed"] == 0
    assert "pg_restore" in report["snapshots"][0]["checked"]

    kind = _CutDumps()
    request = kind.request(
        PgDumpSourceConfig(type="pg_dump", **settings), BackupOptions(source="big", environment=dict(os.environ))
    )
    cut = run_backup(world.repository(), SourceBackup(kind, request)).snapshot.id
    found = world.lifeboat("--json", "verify", cut, env=env)
    assert found.code == 13, found
    problems = json.loads(found.stdout)["snapshots"][0]["problems"]
    assert len(problems) == 1 and problems[0].startswith("database big (big.dump): "), problems
    assert "pg_restore" in problems[0], problems

    packs = sorted((p for p in (world.repo_dir / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    largest = packs[-1]  # the archive's chunks: far larger than the trees
    data = bytearray(largest.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    os.chmod(largest, 0o644)
    largest.write_bytes(bytes(data))
    damaged = world.lifeboat("--json", "verify", whole, env=env)
    assert damaged.code == 13, damaged
    problems = json.loads(damaged.stdout)["snapshots"][0]["problems"]
    assert problems and any("big" in problem for problem in problems), problems


def test_a_second_dump_after_small_changes_adds_little(setup: Setup, worlds: WorldFactory) -> None:
    world = worlds(settings={"archive_mode": "off"}, checksums=False)
    c = world.cluster
    c.psql("CREATE DATABASE daily")
    c.psql(
        "CREATE TABLE events AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS payload "
        "FROM generate_series(1, 150000) g",
        dbname="daily",
    )
    config = write_config(world, {"daily": {"type": "pg_dump", **connection(c), "databases": ["daily"]}})
    env = {"LIFEBOAT_CONFIG": str(config), "LIFEBOAT_REPO": ""}

    def added() -> int:
        done = world.lifeboat("--json", "backup", "--source", "daily", env=env)
        assert done.code == 0, done
        summary = json.loads(done.stdout)["snapshot"]["summary"]
        return int(summary["bytes_new"])

    first = added()
    assert first > 8_000_000
    # a day's changes: a few rows updated, a few added (the unchanged rows' chunks are shared)
    c.psql(
        "UPDATE events SET payload = 'changed' WHERE id BETWEEN 70000 AND 70020;"
        "INSERT INTO events SELECT g, 'new' FROM generate_series(150001, 150100) g",
        dbname="daily",
    )
    second = added()
    assert second < 0.3 * first, (first, second)


def test_a_parallel_dump_with_a_password_from_the_environment_only(worlds: WorldFactory) -> None:
    """``jobs`` dumps in the directory format (stored as ``<db>.dir/``), restored and verified
    like a single archive; the password reaches pg_dump by PGPASSWORD, never its argv."""
    world = worlds(settings={"archive_mode": "off"}, checksums=False)
    c = world.cluster
    hba = c.data_dir / "pg_hba.conf"
    hba.write_text("host all pwuser 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    c.psql(f"CREATE ROLE pwuser LOGIN SUPERUSER PASSWORD '{SECRET}'; SELECT pg_reload_conf()")
    c.psql("CREATE DATABASE par")
    c.psql(
        "CREATE TABLE a AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 300000) g;"
        "CREATE TABLE b AS SELECT g AS id, g * 2 AS w FROM generate_series(1, 300000) g",
        dbname="par",
    )
    tcp = {"host": "127.0.0.1", "port": c.port, "user": "pwuser", "databases": ["par"]}
    config = write_config(
        world,
        {
            "par": {"type": "pg_dump", **tcp, "jobs": 2, "env": {"PGPASSWORD": SECRET}},
            "wrong": {"type": "pg_dump", **tcp, "env": {"PGPASSWORD": "not-it"}},
            "reader": {"type": "pg_dump", **connection(c), "user": "reader", "databases": ["par"]},
            "reader-nopw": {
                "type": "pg_dump",
                **connection(c),
                "user": "reader",
                "databases": ["par"],
                "role_passwords": False,
            },
        },
    )
    env = {"LIFEBOAT_CONFIG": str(config), "LIFEBOAT_REPO": ""}
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:  # the command lines of the client programs while the backup runs
        while not stop.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    words = cmdline.read_bytes().split(b"\0")
                except OSError:
                    continue
                ours = str(c.port).encode() in words  # this cluster's programs, not another test's
                if ours and Path(words[0].decode(errors="replace")).name in ("pg_dump", "pg_dumpall", "psql"):
                    seen.append(" ".join(w.decode(errors="replace") for w in words))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        done = world.lifeboat("--json", "backup", "--source", "par", env=env)
    finally:
        stop.set()
        watcher.join()
    assert done.code == 0, done
    assert seen and all(SECRET not in line for line in seen), seen
    assert any("pg_dump" in line and "-Fd" in line for line in seen), seen
    par_snapshot = json.loads(done.stdout)["snapshot"]["id"]
    record = json.loads(done.stdout)["snapshot"]["extra"]["pg_dump"]
    assert record["databases"][0]["format"] == "directory" and record["databases"][0]["file"] == "par.dir"
    assert SECRET not in done.stdout + done.stderr

    wrong = world.lifeboat("backup", "--source", "wrong", env=env)
    assert wrong.code == 16 and "password authentication failed" in wrong.stderr, wrong
    assert SECRET not in wrong.stderr

    # a role that may read the tables but not pg_authid: the globals without password hashes
    c.psql("CREATE ROLE reader LOGIN")
    c.psql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader", dbname="par")
    denied = world.lifeboat("backup", "--source", "reader", env=env)
    assert denied.code == 16 and "pg_authid" in denied.stderr, denied
    nopw = world.lifeboat("--json", "backup", "--source", "reader-nopw", env=env)
    assert nopw.code == 0, nopw
    globals_sql = world.lifeboat("dump", json.loads(nopw.stdout)["snapshot"]["id"], "globals.sql", env=env)
    assert "CREATE ROLE pwuser" in globals_sql.stdout and "SCRAM-SHA-256" not in globals_sql.stdout

    connect = ["--host", str(c.socket_dir), "--port", str(c.port), "--user", "postgres"]
    restored = world.lifeboat(
        "restore", "pg-dump", par_snapshot, "--source", "par", *connect, "--database", "par", "--as", "par_copy",
        "--jobs", "2", env=env,
    )  # fmt: skip
    assert restored.code == 0, restored
    for table in ("a", "b"):
        assert rows(c, "par_copy", table) == rows(c, "par", table)
    verified = world.lifeboat("--json", "verify", env=env)
    assert verified.code == 0 and json.loads(verified.stdout)["failed"] == 0, verified
