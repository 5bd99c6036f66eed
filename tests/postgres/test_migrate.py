"""``lifeboat migrate`` with real clusters: tables exported as CSV and Parquet from a live database
and from a backup as it was at a point in time (a scratch cluster that leaves nothing behind and
never archives), packaged, and imported all-or-nothing."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from decimal import Decimal
from pathlib import Path

import pytest
import zstandard

from lifeboat.sources.tools.pgcluster import ScratchCluster
from tests.postgres.conftest import PgWorld, WorldFactory, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-migrate")]

ORDERS = """
CREATE TABLE orders(
    id serial PRIMARY KEY,
    customer text NOT NULL,
    amount numeric(10,2),
    placed_at timestamptz,
    shipped boolean,
    details jsonb,
    label bytea,
    due date,
    big bigint,
    ratio double precision
);
INSERT INTO orders(customer, amount, placed_at, shipped, details, label, due, big, ratio) VALUES
  ('ada', 12.50, '2026-11-30 10:00:00+00', true, '{"items": 2}', '\\x0001ff', '2026-12-01', 9000000000, 0.5),
  ('bob', 7.25, '2026-11-30 11:30:00+00', false, '{"items": 1}', NULL, NULL, NULL, NULL),
  ('cy, "the" third', NULL, NULL, NULL, NULL, NULL, NULL, -1, 1e-9),
  ('dee
two lines', 100.00, '2026-11-30 12:00:00+00', true, '[]', '\\x', '2026-12-24', 0, 2.0);
"""


def customers(cluster: ScratchCluster, dbname: str = "postgres") -> list[str]:
    return (
        cluster.psql("SELECT customer FROM orders ORDER BY id", dbname=dbname).split("\n")
        if cluster.psql("SELECT count(*) FROM orders", dbname=dbname) != "0"
        else []
    )


def count(cluster: ScratchCluster, table: str = "orders", dbname: str = "postgres") -> int:
    return int(cluster.psql(f"SELECT count(*) FROM {table}", dbname=dbname))


@pytest.fixture(scope="module")
def world(worlds: WorldFactory) -> PgWorld:
    world = worlds()
    world.cluster.psql(ORDERS)
    world.cluster.psql(
        "CREATE SCHEMA shop; CREATE TABLE shop.items(sku text PRIMARY KEY, qty int);"
        "INSERT INTO shop.items VALUES ('a', 1), ('b', 2); CREATE TABLE shop.empty(x int)"
    )
    backed = world.backup()  # every test reading "from a backup" has one, whatever order the tests run in
    assert backed.code == 0, backed
    return world


def migrate(world: PgWorld, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[bytes] | object:
    return world.lifeboat("migrate", *args, timeout=timeout)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- exporting from a live database ---------------------------------------------------------------


def test_export_table_as_csv_holds_every_row_with_a_header(world: PgWorld, tmp_path: Path) -> None:
    out = tmp_path / "orders.csv"
    result = world.lifeboat("migrate", "export-table", *world.conn_args(), "--table", "orders", "--output", str(out))
    assert result.code == 0, result
    rows = read_csv(out)
    assert [r["customer"] for r in rows] == ["ada", "bob", 'cy, "the" third', "dee\ntwo lines"]
    assert rows[0]["amount"] == "12.50" and rows[0]["label"] == "\\x0001ff"
    assert rows[2]["amount"] == ""  # NULL
    assert "exported 4 rows of public.orders" in result.stderr

    again = world.lifeboat("migrate", "export-table", *world.conn_args(), "-t", "orders", "-o", str(out))
    assert again.code != 0 and "exists" in again.stderr  # never overwritten without --force


def test_export_table_to_standard_output_and_chosen_columns(world: PgWorld) -> None:
    result = world.lifeboat(
        "migrate", "export-table", *world.conn_args(), "-t", "public.orders", "--columns", "customer,id", "-o", "-"
    )
    assert result.code == 0, result
    assert result.stdout.splitlines()[:3] == ["customer,id", "ada,1", "bob,2"]
    bad = world.lifeboat("migrate", "export-table", *world.conn_args(), "-t", "orders", "--columns", "nope", "-o", "-")
    assert bad.code == 2 and "no column 'nope'" in bad.stderr
    missing = world.lifeboat("migrate", "export-table", *world.conn_args(), "-t", "nosuch", "-o", "-")
    assert missing.code != 0 and "table nosuch does not exist" in missing.stderr


def test_export_table_as_parquet_reads_back_row_identical(world: PgWorld, tmp_path: Path) -> None:
    import psycopg
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "orders.parquet"
    result = world.lifeboat(
        "--json", "migrate", "export-table", *world.conn_args(), "-t", "orders", "-f", "parquet", "-o", str(out)
    )
    assert result.code == 0, result
    assert json.loads(result.stdout)["tables"][0]["rows"] == 4
    table = pq.read_table(out)
    assert table.schema.field("id").type == pa.int32()
    assert table.schema.field("amount").type == pa.decimal128(10, 2)
    assert table.schema.field("placed_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("details").type == pa.string()
    assert table.schema.field("label").type == pa.binary()
    assert table.schema.field("due").type == pa.date32()
    c = world.cluster
    with psycopg.connect(host=str(c.socket_dir), port=c.port, user="postgres", dbname="postgres") as conn:
        expected = conn.execute(
            "SELECT id, customer, amount, placed_at, shipped, details::text, label, due, big, ratio "
            "FROM orders ORDER BY id"
        ).fetchall()
    got = sorted(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True))
    assert [tuple(r) for r in got] == [tuple(r) for r in expected]
    assert got[0][2] == Decimal("12.50") and got[0][6] == b"\x00\x01\xff"


def test_parquet_without_pyarrow_is_a_missing_tool_with_the_install_hint(world: PgWorld, tmp_path: Path) -> None:
    # A fault impossible to produce for real here (pyarrow is installed): hide the module.
    code = (
        "import sys; sys.modules['pyarrow'] = None; sys.argv = ['lifeboat'] + sys.argv[1:]; "
        "from lifeboat.app.cli.main import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "migrate", "export-table", *world.conn_args(), "-t", "orders", "-f", "parquet",
         "-o", str(tmp_path / "x.parquet")],
        capture_output=True, text=True, env={**os.environ, **world.env}, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 15, done.stderr
    assert "pyarrow" in done.stderr and "pip install" in done.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_export_schema_writes_one_file_per_table_and_schema_sql(world: PgWorld, tmp_path: Path) -> None:
    out = tmp_path / "shop"
    result = world.lifeboat("migrate", "export-schema", *world.conn_args(), "--schema", "shop", "-o", str(out))
    assert result.code == 0, result
    assert sorted(p.name for p in out.iterdir()) == ["schema.sql", "shop.empty.csv", "shop.items.csv"]
    assert "CREATE TABLE shop.items" in (out / "schema.sql").read_text()
    assert read_csv(out / "shop.items.csv") == [{"sku": "a", "qty": "1"}, {"sku": "b", "qty": "2"}]
    assert (out / "shop.empty.csv").read_text() == "x\n"


# --- exporting from a backup as at a point in time -----------------------------------------------


def archiver_stats(cluster: ScratchCluster) -> str:
    return cluster.psql("SELECT archived_count, last_archived_wal FROM pg_stat_archiver")


def scratch_dir(world: PgWorld) -> Path:
    """An empty directory the server's OS user can reach, for the scratch clusters."""
    path = world.new_dir(f"scratch-{time.monotonic_ns()}")
    path.mkdir()
    os.chmod(path, 0o755)
    return path


def scratch_processes(under: Path) -> list[str]:
    """Scratch processes of this test (below ``under``): other tests, on other workers, run their own."""
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in ps.splitlines() if "lifeboat-scratch-" in line and str(under) in line]


def test_orders_as_at_1403_come_back_from_the_backup_and_production_is_untouched(
    world: PgWorld, tmp_path: Path
) -> None:
    c = world.cluster
    c.psql("CREATE TABLE ledger(id int PRIMARY KEY, what text)")
    c.psql("INSERT INTO ledger VALUES (1, 'opening'), (2, 'refund'), (3, 'sale')")
    backup_id = json.loads(world.backup().stdout)["snapshot"]["id"]
    c.psql("INSERT INTO ledger VALUES (4, 'late sale')")
    c.psql("DELETE FROM ledger WHERE id = 2")
    time.sleep(0.3)
    at_1403 = c.psql("SELECT clock_timestamp()")
    time.sleep(0.3)
    c.psql("DELETE FROM ledger")  # the bad DELETE
    switched = world.switch_wal()
    world.wait_archived(switched)
    wait_until(lambda: archiver_stats(c).endswith(switched), what="the archiver's statistics")
    before = archiver_stats(c)
    archived_before = {f.name for f in world.archive().files()}

    scratch_parent = scratch_dir(world)
    out = tmp_path / "ledger.csv"
    result = world.lifeboat(
        "migrate", "export-table", "--time", at_1403, "--table", "ledger", "--output", str(out),
        "--scratch-dir", str(scratch_parent), timeout=600,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert read_csv(out) == [
        {"id": "1", "what": "opening"},
        {"id": "3", "what": "sale"},
        {"id": "4", "what": "late sale"},
    ]
    assert "recovered to time" in result.stderr
    # production still has the bad DELETE (nothing was written into it) and archived nothing more
    assert count(c, "ledger") == 0
    assert archiver_stats(c) == before
    # the scratch cluster never archived: no new timeline or segment reached the repository
    assert {f.name for f in world.archive().files()} == archived_before
    # nothing left behind: no directory, no process
    assert list(scratch_parent.iterdir()) == []
    assert scratch_processes(scratch_parent) == []

    # the same as Parquet, and the whole schema, read from the backup at that time
    schema_dir = tmp_path / "public"
    whole = world.lifeboat(
        "--json", "migrate", "export-schema", "--time", at_1403, "--schema", "public", "--output", str(schema_dir),
        "--scratch-dir", str(scratch_parent), timeout=600,
    )  # fmt: skip
    assert whole.code == 0, whole
    report = json.loads(whole.stdout)
    assert report["origin"]["type"] == "backup"
    assert {t["table"]: t["rows"] for t in report["tables"]}["public.ledger"] == 3
    assert list(scratch_parent.iterdir()) == [] and scratch_processes(scratch_parent) == []

    # --snapshot alone: the rows as they were when that base backup became consistent
    at_backup = world.lifeboat(
        "migrate", "export-table", "--snapshot", backup_id[:8], "--table", "ledger", "--output", "-",
        "--scratch-dir", str(scratch_parent), timeout=600,
    )  # fmt: skip
    assert at_backup.code == 0, at_backup.stderr
    assert at_backup.stdout.splitlines() == ["id,what", "1,opening", "2,refund", "3,sale"]
    assert list(scratch_parent.iterdir()) == [] and scratch_processes(scratch_parent) == []


def test_a_failed_export_from_a_backup_leaves_no_scratch_cluster(world: PgWorld, tmp_path: Path) -> None:
    scratch_parent = scratch_dir(world)
    result = world.lifeboat(
        "migrate", "export-table", "--latest", "--table", "no_such_table", "--output", str(tmp_path / "x.csv"),
        "--scratch-dir", str(scratch_parent), timeout=600,
    )  # fmt: skip
    assert result.code != 0
    assert "table no_such_table does not exist" in result.stderr
    assert list(scratch_parent.iterdir()) == []
    assert scratch_processes(scratch_parent) == []
    assert not (tmp_path / "x.csv").exists()


def test_an_interrupted_export_from_a_backup_leaves_no_scratch_cluster(world: PgWorld, tmp_path: Path) -> None:
    import signal

    scratch_parent = scratch_dir(world)
    process = subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "migrate", "export-table", "--latest", "--table", "orders",
         "--output", str(tmp_path / "x.csv"), "--scratch-dir", str(scratch_parent)],
        env={**os.environ, **world.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not any(scratch_parent.glob("*/data/postmaster.pid")):  # the scratch server is starting
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=180)
    assert process.returncode == 130, err
    assert list(scratch_parent.iterdir()) == []
    assert scratch_processes(scratch_parent) == []


# --- packages and imports -------------------------------------------------------------------------


def test_a_package_imports_into_another_database_with_equal_rows_and_checksums(world: PgWorld, tmp_path: Path) -> None:
    c = world.cluster
    package = tmp_path / "orders.tar.zst"
    made = world.lifeboat(
        "--json", "migrate", "package", *world.conn_args(), "--table", "orders", "--table", "shop.items",
        "--output", str(package),
    )  # fmt: skip
    assert made.code == 0, made
    manifest = json.loads(made.stdout)["manifest"]
    assert [(t["table"], t["rows"]) for t in manifest["tables"]] == [("public.orders", 4), ("shop.items", 2)]
    assert manifest["lifeboat_version"] and manifest["origin"]["type"] == "live"
    with (
        zstandard.ZstdDecompressor().stream_reader(open(package, "rb")) as raw,
        tarfile.open(fileobj=raw, mode="r|") as tar,
    ):
        names = [m.name for m in tar]
    assert names == ["manifest.json", "schema.sql", "data/public.orders.csv", "data/shop.items.csv"]

    c.psql("CREATE DATABASE copy")
    c.psql("CREATE SCHEMA shop", dbname="copy")
    loaded = world.lifeboat(
        "--json", "migrate", "import", "--host", str(c.socket_dir), "--port", str(c.port), "--user", "postgres",
        "--dbname", "copy", "--package", str(package), "--create",
    )  # fmt: skip
    assert loaded.code == 0, loaded
    assert json.loads(loaded.stdout)["rows"] == 6
    assert count(c, "orders", "copy") == 4 and count(c, "shop.items", "copy") == 2
    # the same rows: a package of the copy has the same checksums
    again = world.lifeboat(
        "--json", "migrate", "package", "--host", str(c.socket_dir), "--port", str(c.port), "--user", "postgres",
        "--dbname", "copy", "-t", "orders", "-t", "shop.items", "-o", str(tmp_path / "copy.tar.zst"),
    )  # fmt: skip
    assert again.code == 0, again
    copied = json.loads(again.stdout)["manifest"]["tables"]
    assert [(t["rows"], t["sha256"]) for t in copied] == [(t["rows"], t["sha256"]) for t in manifest["tables"]]
    # the serial column goes on after the loaded rows
    c.psql("INSERT INTO orders(customer) VALUES ('new')", dbname="copy")

    # into a table that has rows: refused, unless appended
    refused = world.lifeboat(
        "migrate", "import", "--host", str(c.socket_dir), "--port", str(c.port), "--user", "postgres",
        "--dbname", "copy", "--package", str(package),
    )  # fmt: skip
    assert refused.code != 0 and "already has rows" in refused.stderr and "--append" in refused.stderr
    assert count(c, "orders", "copy") == 5


def test_a_damaged_package_is_refused_before_anything_is_loaded(world: PgWorld, tmp_path: Path) -> None:
    c = world.cluster
    package = tmp_path / "p.tar.zst"
    assert world.lifeboat("migrate", "package", *world.conn_args(), "-t", "shop.items", "-o", str(package)).code == 0
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    with (
        zstandard.ZstdDecompressor().stream_reader(open(package, "rb")) as raw,
        tarfile.open(fileobj=raw, mode="r|") as tar,
    ):
        for m in tar:
            f = tar.extractfile(m)
            members.append((m, f.read() if f else b""))
    damaged = tmp_path / "damaged.tar.zst"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for m, data in members:
            changed = data.replace(b"a,1", b"a,9") if m.name.endswith(".csv") else data
            m.size = len(changed)
            tar.addfile(m, io.BytesIO(changed))
    damaged.write_bytes(zstandard.ZstdCompressor().compress(buffer.getvalue()))
    c.psql("CREATE DATABASE damaged")
    c.psql("CREATE SCHEMA shop; CREATE TABLE shop.items(sku text PRIMARY KEY, qty int)", dbname="damaged")
    result = world.lifeboat(
        "migrate", "import", "--host", str(c.socket_dir), "--port", str(c.port), "--user", "postgres",
        "--dbname", "damaged", "--package", str(damaged),
    )  # fmt: skip
    assert result.code == 13, result
    assert "data/shop.items.csv does not match its checksum" in result.stderr
    assert count(c, "shop.items", "damaged") == 0


def test_a_bad_value_fails_naming_line_column_and_value_and_imports_nothing(world: PgWorld, tmp_path: Path) -> None:
    c = world.cluster
    c.psql("CREATE TABLE payments(id int PRIMARY KEY, amount numeric(10,2), note text)")
    bad = tmp_path / "payments.csv"
    bad.write_text("note,id,amount\nfirst,1,10.00\nsecond,2,abc\nthird,3,3.00\n")
    conn = ["--host", str(c.socket_dir), "--port", str(c.port), "--user", "postgres"]
    result = world.lifeboat("migrate", "import", *conn, "--csv", str(bad), "--table", "payments")
    assert result.code != 0
    assert 'payments.csv, line 3, column amount, value "abc"' in result.stderr, result.stderr
    assert "nothing was imported" in result.stderr
    assert count(c, "payments") == 0

    unknown = tmp_path / "unknown.csv"
    unknown.write_text("id,amount,colour\n1,2.00,red\n")
    result = world.lifeboat("migrate", "import", *conn, "--csv", str(unknown), "--table", "payments")
    assert result.code == 2 and "column 'colour'" in result.stderr

    good = tmp_path / "good.csv"
    good.write_text("amount,id\n1.50,1\n2.50,2\n")
    assert world.lifeboat("migrate", "import", *conn, "--csv", str(good), "--table", "payments").code == 0
    assert c.psql("SELECT id, amount, note FROM payments ORDER BY id") == "1|1.50|\n2|2.50|"
    refused = world.lifeboat("migrate", "import", *conn, "--csv", str(good), "--table", "payments")
    assert refused.code != 0 and "already has rows" in refused.stderr
    more = tmp_path / "more.csv"
    more.write_text("id\n3\n")
    assert world.lifeboat("migrate", "import", *conn, "--csv", str(more), "-t", "payments", "--append").code == 0
    assert count(c, "payments") == 3
    assert world.lifeboat("migrate", "import", *conn, "--csv", str(good), "-t", "payments", "--truncate").code == 0
    assert count(c, "payments") == 2


def test_a_package_stored_in_the_repository_is_a_migration_package_snapshot(world: PgWorld, tmp_path: Path) -> None:
    c = world.cluster
    stored = world.lifeboat("--json", "migrate", "package", *world.conn_args(), "-t", "shop.items", "--into-repository")
    assert stored.code == 0, stored
    snapshot_id = json.loads(stored.stdout)["snapshot"]
    listed = json.loads(world.lifeboat("--json", "snapshots").stdout)
    found = [s for s in listed if s["id"] == snapshot_id]
    assert found and found[0]["kind"] == "migration-package"
    dumped = world.lifeboat("dump", snapshot_id, "package.tar.zst")
    assert dumped.code == 0, dumped
    package = tmp_path / "from-repo.tar.zst"
    package.write_bytes(dumped.stdout_bytes)
    c.psql("CREATE DATABASE fromrepo")
    loaded = world.lifeboat(
        "migrate", "import", "--host", str(c.socket_dir), "--port", str(c.port), "--user", "postgres",
        "--dbname", "fromrepo", "--package", str(package), "--create",
    )  # fmt: skip
    assert loaded.code == 0, loaded
    assert c.psql("SELECT sku, qty FROM shop.items ORDER BY sku", dbname="fromrepo") == "a|1\nb|2"


def test_a_configured_source_is_read_at_a_time_in_its_own_database(world: PgWorld, tmp_path: Path) -> None:
    c = world.cluster
    c.psql("CREATE DATABASE shopdb")
    c.psql("CREATE TABLE stock(item text, qty int); INSERT INTO stock VALUES ('bolt', 10)", dbname="shopdb")
    config = world.base / "migrate.yaml"
    config.write_text(
        "version: 1\n"
        f"repositories:\n  main:\n    url: {world.repo_dir}\n    password_file: {world.password_file}\n"
        "sources:\n  shop:\n    type: postgres\n"
        f"    data_directory: {c.data_dir}\n    host: {c.socket_dir}\n    port: {c.port}\n"
        "    user: postgres\n    dbname: shopdb\n"
    )
    env = {"LIFEBOAT_CONFIG": str(config), "LIFEBOAT_REPO": ""}
    backed = world.lifeboat("backup", "postgres", "--source", "shop", "--archive-wait", "60s", env=env)
    assert backed.code == 0, backed
    c.psql("UPDATE stock SET qty = 0", dbname="shopdb")
    time.sleep(0.3)
    before_update = c.psql("SELECT clock_timestamp()")
    time.sleep(0.3)
    c.psql("UPDATE stock SET qty = -5", dbname="shopdb")
    world.wait_archived(world.switch_wal())
    result = world.lifeboat(
        "migrate", "export-table", "--source", "shop", "--time", before_update, "-t", "stock", "-o", "-",
        "--scratch-dir", str(scratch_dir(world)), env=env, timeout=600,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == ["item,qty", "bolt,0"]
    live = world.lifeboat("migrate", "export-table", "--source", "shop", "-t", "stock", "-o", "-", env=env)
    assert live.stdout.splitlines() == ["item,qty", "bolt,-5"]
