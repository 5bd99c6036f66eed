"""``lifeboat migrate`` reading from a pg_dump source's dump: the database as it was dumped,
restored into a scratch cluster (only the wanted table when pg_restore can select it) that is
removed afterwards — after a success, a failure and Ctrl-C — while production stays untouched."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.postgres.conftest import PgWorld, WorldFactory

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-migrate-dump")]

SHOP = """
CREATE TABLE orders(id serial PRIMARY KEY, customer text NOT NULL, amount numeric(10,2));
INSERT INTO orders(customer, amount) SELECT 'c' || g, g * 1.25 FROM generate_series(1, 500) g;
CREATE TABLE customers(id int PRIMARY KEY, name text);
INSERT INTO customers SELECT g, 'name ' || g FROM generate_series(1, 40) g;
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE TABLE moods(id int, m mood);
INSERT INTO moods VALUES (1, 'calm'), (2, 'busy');
"""


@pytest.fixture(scope="module")
def world(worlds: WorldFactory) -> PgWorld:
    world = worlds(settings={"archive_mode": "off"}, checksums=False)
    c = world.cluster
    c.psql("CREATE DATABASE shop")
    c.psql("CREATE DATABASE crm")
    c.psql(SHOP, dbname="shop")
    c.psql("CREATE TABLE contacts(id int); INSERT INTO contacts VALUES (1), (2), (3)", dbname="crm")
    return world


def write_config(world: PgWorld) -> Path:
    c = world.cluster
    where = {"host": str(c.socket_dir), "port": c.port, "user": "postgres"}
    config = world.base / "dumps.yaml"
    config.write_text(
        json.dumps(
            {
                "repositories": {"main": {"url": str(world.repo_dir), "password_file": str(world.password_file)}},
                "sources": {
                    "dumps": {"type": "pg_dump", **where, "databases": ["shop"]},
                    "everything": {"type": "pg_dump", **where, "databases": ["shop", "crm"]},
                },
            }
        )
    )
    return config


def lifeboat(world: PgWorld, *args: str) -> CliResult:
    env = {"LIFEBOAT_CONFIG": str(write_config(world)), "LIFEBOAT_REPO": ""}
    return world.lifeboat(*args, env=env, timeout=600)


def scratch_dir(world: PgWorld) -> Path:
    path = world.new_dir(f"scratch-{time.monotonic_ns()}")
    path.mkdir()
    os.chmod(path, 0o755)
    return path


def processes_in(directory: Path) -> list[str]:
    """Processes started for a scratch directory below ``directory`` (command line or working directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if str(directory) in args or cwd.startswith(str(directory)):
            found.append(f"{entry.name}: {args}")
    return found


def left_behind(scratch: Path) -> list[Any]:
    return [*scratch.iterdir(), *processes_in(scratch)]


def backup(world: PgWorld, source: str) -> dict[str, Any]:
    done = lifeboat(world, "--json", "backup", "--source", source)
    assert done.code == 0, done
    snapshot: dict[str, Any] = json.loads(done.stdout)["snapshot"]
    return snapshot


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_orders_table_as_in_last_nights_dump(world: PgWorld, tmp_path: Path) -> None:
    c = world.cluster
    before_first = c.psql("SELECT clock_timestamp()")
    time.sleep(0.3)
    dumped = backup(world, "dumps")
    c.psql("DELETE FROM orders WHERE id > 100", dbname="shop")  # the bad DELETE in production
    scratch = scratch_dir(world)
    out = tmp_path / "orders.csv"

    result = lifeboat(
        world, "--json", "migrate", "export-table", "--source", "dumps", "--latest", "--table", "orders",
        "--output", str(out), "--scratch-dir", str(scratch),
    )  # fmt: skip

    assert result.code == 0, result
    rows = read_csv(out)
    assert len(rows) == 500 and rows[-1] == {"id": "500", "customer": "c500", "amount": "625.00"}
    origin = json.loads(result.stdout)["origin"]
    assert origin["type"] == "dump" and origin["snapshot"] == dumped["id"] and origin["database"] == "shop"
    assert origin["tables_only"] is True  # pg_restore -t: only the table was restored
    assert origin["target"] == "the newest dump" and origin["dumped_at"] == dumped["time"]
    assert c.psql("SELECT count(*) FROM orders", dbname="shop") == "100"  # production untouched
    assert left_behind(scratch) == []

    # --time: the newest dump taken at or before it, said so
    later = c.psql("SELECT clock_timestamp()")
    text = lifeboat(
        world, "migrate", "export-table", "--source", "dumps", "--time", later, "--table", "public.orders",
        "--output", "-", "--scratch-dir", str(scratch),
    )  # fmt: skip
    assert text.code == 0, text
    assert len(text.stdout.splitlines()) == 501
    assert "the newest dump at or before" in text.stderr and f"dump {dumped['id'][:8]}" in text.stderr
    assert left_behind(scratch) == []

    # --time before the first dump: a clear error with a hint, nothing made
    early = lifeboat(
        world, "migrate", "export-table", "--source", "dumps", "--time", before_first, "--table", "orders",
        "--output", str(tmp_path / "early.csv"), "--scratch-dir", str(scratch),
    )  # fmt: skip
    assert early.code == 2, early
    assert "has no dump taken at or before" in early.stderr and "its first is from" in early.stderr
    assert "a dump is a point in time" in early.stderr
    assert not (tmp_path / "early.csv").exists() and left_behind(scratch) == []

    # no dump named: the options that name one
    unnamed = lifeboat(world, "migrate", "export-table", "--source", "dumps", "--table", "orders", "-o", "-")
    assert unnamed.code == 2 and "--latest" in unnamed.stderr and "--time" in unnamed.stderr, unnamed


def test_a_table_pg_restore_cannot_select_alone_comes_from_the_whole_database(world: PgWorld, tmp_path: Path) -> None:
    backup(world, "dumps")
    scratch = scratch_dir(world)
    result = lifeboat(
        world, "migrate", "export-table", "--source", "dumps", "--latest", "--table", "moods",
        "--output", str(tmp_path / "moods.csv"), "--scratch-dir", str(scratch),
    )  # fmt: skip
    assert result.code == 0, result
    assert read_csv(tmp_path / "moods.csv") == [{"id": "1", "m": "calm"}, {"id": "2", "m": "busy"}]
    # its enum type is defined outside the table: the whole database was restored, and said so
    assert "could not be restored alone" in result.stderr and "the whole database" in result.stderr
    assert left_behind(scratch) == []


def test_a_dump_of_several_databases_needs_the_one_to_read(world: PgWorld, tmp_path: Path) -> None:
    backup(world, "everything")
    scratch = scratch_dir(world)
    args = ["migrate", "export-table", "--source", "everything", "--latest", "--table", "contacts", "-o", "-"]

    ambiguous = lifeboat(world, *args, "--scratch-dir", str(scratch))
    assert ambiguous.code == 2, ambiguous
    assert "holds 2 databases" in ambiguous.stderr and "crm, shop" in ambiguous.stderr
    unknown = lifeboat(world, *args, "--database", "nope", "--scratch-dir", str(scratch))
    assert unknown.code == 2 and 'holds no database "nope"' in unknown.stderr, unknown

    chosen = lifeboat(world, *args, "--database", "crm", "--scratch-dir", str(scratch))
    assert chosen.code == 0, chosen
    assert chosen.stdout.splitlines() == ["id", "1", "2", "3"]
    assert left_behind(scratch) == []


def test_a_failed_export_from_a_dump_leaves_no_scratch_cluster(world: PgWorld, tmp_path: Path) -> None:
    backup(world, "dumps")
    scratch = scratch_dir(world)
    result = lifeboat(
        world, "migrate", "export-schema", "--source", "dumps", "--latest", "--schema", "no_such_schema",
        "--output", str(tmp_path / "out"), "--scratch-dir", str(scratch),
    )  # fmt: skip
    assert result.code != 0
    assert "no_such_schema" in result.stderr
    assert left_behind(scratch) == []


def test_an_interrupted_export_from_a_dump_leaves_no_scratch_cluster(world: PgWorld, tmp_path: Path) -> None:
    backup(world, "dumps")
    scratch = scratch_dir(world)
    env = {**os.environ, **world.env, "LIFEBOAT_CONFIG": str(write_config(world)), "LIFEBOAT_REPO": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "migrate", "export-schema", "--source", "dumps", "--latest",
         "--schema", "public", "--output", str(tmp_path / "x"), "--scratch-dir", str(scratch)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not any(scratch.glob("*/cluster/data/postmaster.pid")):  # the scratch server is starting
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=180)
    assert process.returncode == 130, err
    assert left_behind(scratch) == []


def test_a_package_from_a_dump_imports_with_the_rows_as_dumped(world: PgWorld, tmp_path: Path) -> None:
    c = world.cluster
    c.psql("DROP TABLE IF EXISTS gone; CREATE TABLE gone(id int PRIMARY KEY, what text)", dbname="shop")
    c.psql("INSERT INTO gone VALUES (1, 'a'), (2, 'b')", dbname="shop")
    backup(world, "dumps")
    c.psql("DROP TABLE gone", dbname="shop")  # lost in production after the dump
    scratch = scratch_dir(world)
    package = tmp_path / "gone.tar.zst"

    made = lifeboat(
        world, "--json", "migrate", "package", "--source", "dumps", "--latest", "-t", "gone", "-t", "customers",
        "--output", str(package), "--scratch-dir", str(scratch),
    )  # fmt: skip
    assert made.code == 0, made
    manifest = json.loads(made.stdout)["manifest"]
    assert [(t["table"], t["rows"]) for t in manifest["tables"]] == [("public.gone", 2), ("public.customers", 40)]
    assert manifest["origin"]["type"] == "dump"
    assert left_behind(scratch) == []

    c.psql("CREATE DATABASE restored_from_dump")
    loaded = lifeboat(
        world, "--json", "migrate", "import", *world.conn_args(), "--dbname", "restored_from_dump",
        "--package", str(package), "--create",
    )  # fmt: skip
    assert loaded.code == 0, loaded
    assert c.psql("SELECT string_agg(what, ',' ORDER BY id) FROM gone", dbname="restored_from_dump") == "a,b"
    assert c.psql("SELECT count(*) FROM customers", dbname="restored_from_dump") == "40"
    again = lifeboat(
        world, "--json", "migrate", "package", *world.conn_args(), "--dbname", "restored_from_dump",
        "-t", "gone", "-t", "customers", "-o", str(tmp_path / "again.tar.zst"),
    )  # fmt: skip
    assert again.code == 0, again
    copied = json.loads(again.stdout)["manifest"]["tables"]
    assert [(t["rows"], t["sha256"]) for t in copied] == [(t["rows"], t["sha256"]) for t in manifest["tables"]]
