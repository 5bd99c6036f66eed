"""Logical-backup benchmark: seven "daily" dumps of one database, Lifeboat's ``pg_dump``
source beside borgmatic + Borg and beside the plain ``pg_dump -Fc`` files the usual scripts
keep, in one run on the same cluster.

Data (not pgbench's): a shop — ``customers`` (text that compresses), ``orders`` (append-heavy,
a hot set of recent orders updated every day) and ``events`` (append-only JSON with random
tokens, hard to compress); about 1 GB at ``--scale 1``. VACUUMed before the first backup.
Between two days: new orders and events (3 %), the hot set updated (status, amount), the
oldest events deleted, then VACUUM — a realistic day of an application.

Per day and tool: wall time, CPU time, peak RSS. After seven days: repository bytes (Borg's
repository, Lifeboat's, the sum of the seven ``-Fc`` files), and the time to restore the
database and one table (``orders``) from the last day — borgmatic restores whole databases
only, so its one-table restore is "not possible". Two borgmatic settings are run: its
defaults (``pg_dump --format custom``, compressed by pg_dump, then lz4 by Borg) and with
``pg_dump --compress=0`` (what lets Borg's chunker deduplicate); both are what a team could
configure. Results go to bench/results/logical-<date>.md and .json. Run as root:

    python bench/logical_bench.py [--scale 1.0] [--days 7] [--keep]

Needs PostgreSQL 15 and the Debian packages borgbackup and borgmatic (bench/setup.sh).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from common import (  # noqa: E402 - bench/ is not a package
    Measurement,
    dir_bytes,
    drop_caches,
    machine,
    require,
    run_measured,
    version_of,
    write_results,
)

from lifeboat.sources.tools.pg import find_program  # noqa: E402
from lifeboat.sources.tools.pgcluster import ScratchCluster, free_port  # noqa: E402

PASSWORD = "benchmark-passphrase"
DATABASE = "shop"
TABLE = "orders"

# Row counts at --scale 1 (about 1 GB of table data).
CUSTOMERS = 300_000
ORDERS = 3_000_000
EVENTS = 1_600_000

SCHEMA = """
CREATE TABLE customers (
    id integer PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    city text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers(id),
    created_at timestamptz NOT NULL,
    status text NOT NULL,
    amount numeric(12, 2) NOT NULL,
    note text NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    order_id bigint NOT NULL,
    kind text NOT NULL,
    payload jsonb NOT NULL
);
"""

CITIES = "ARRAY['Lisbon','Porto','Berlin','Hamburg','Lyon','Paris','Oslo','Turin','Ghent','Cork']"
STATUSES = "ARRAY['new','paid','packed','shipped','delivered','returned']"


def fill_customers(n: int) -> str:
    return (
        "INSERT INTO customers SELECT g, 'Customer ' || g || ' ' || md5(g::text), "
        "'c' || g || '@example.org', "
        f"({CITIES})[1 + g % 10], now() - (g % 1000) * interval '1 day' FROM generate_series(1, {n}) g"
    )


def add_orders(first: int, n: int, customers: int) -> str:
    return (
        "INSERT INTO orders (customer_id, created_at, status, amount, note) "
        f"SELECT 1 + (g::bigint * 7919) % {customers}, now() - interval '1 hour' * (g % 5000), "
        f"({STATUSES})[1 + g % 6], ((g * 37) % 100000) / 100.0, "
        "CASE WHEN g % 3 = 0 THEN 'leave at the door, ring twice' "
        "WHEN g % 3 = 1 THEN 'gift wrap: ' || md5(g::text) ELSE '' END "
        f"FROM generate_series({first}, {first + n - 1}) g"
    )


def add_events(n: int, max_order: int) -> str:
    return (
        "INSERT INTO events (order_id, kind, payload) "
        f"SELECT 1 + (random() * {max_order - 1})::bigint, (ARRAY['view','cart','pay','ship'])[1 + g % 4], "
        "jsonb_build_object('token', md5(random()::text) || md5(random()::text), 'ip', "
        "(random() * 255)::int || '.' || (random() * 255)::int || '.0.1', 'ua', 'Mozilla/5.0 (X11; Linux x86_64)') "
        f"FROM generate_series(1, {n}) g"
    )


class Bench:
    def __init__(self, work: Path, *, scale: float, days: int) -> None:
        self.work = work
        self.scale = scale
        self.days = days
        self.customers = max(1000, int(CUSTOMERS * scale))
        self.orders = max(10_000, int(ORDERS * scale))
        self.events = max(10_000, int(EVENTS * scale))
        self.results: list[Measurement] = []
        self.notes: dict[str, object] = {}
        self.cluster = ScratchCluster(work / "pg", port=free_port())
        self.password_file = work / "passphrase"
        self.lifeboat_repo = work / "repo-lifeboat"
        self.config = work / "lifeboat.yaml"
        self.fc_dir = work / "pg_dump-Fc"
        self.borg = {"borgmatic": work / "repo-borg", "borgmatic -Z0": work / "repo-borg-z0"}
        self.borg_configs = {name: work / f"{name.replace(' ', '')}.yaml" for name in self.borg}

    # --- environment ------------------------------------------------------------------------------
    @property
    def lifeboat_env(self) -> dict[str, str]:
        return {
            "LIFEBOAT_REPO": str(self.lifeboat_repo),
            "LIFEBOAT_PASSWORD_FILE": str(self.password_file),
            "LIFEBOAT_CONFIG": str(self.config),
            "LIFEBOAT_PASSWORD": "",
            "PYTHONPATH": str(HERE.parent / "src"),
        }

    def lifeboat(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "lifeboat", *argv]

    @property
    def pg_env(self) -> dict[str, str]:
        # every tool reaches the server the same way: TCP on 127.0.0.1 (borgmatic names the dump by host)
        return {**self.cluster.env(), "PGHOST": "127.0.0.1"}

    def setup(self) -> None:
        print(f"setting up the shop database (scale {self.scale}) in {self.work}", flush=True)
        os.chmod(self.work, 0o755)
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        c = self.cluster
        c.init(
            checksums=True,
            settings={
                "shared_buffers": "256MB",
                "max_wal_size": "4GB",
                "synchronous_commit": "off",
                "autovacuum": "off",
            },
        )
        c.start()
        c.psql(f"CREATE DATABASE {DATABASE}")
        c.psql(SCHEMA, dbname=DATABASE)
        c.psql(fill_customers(self.customers), dbname=DATABASE)
        c.psql(add_orders(1, self.orders, self.customers), dbname=DATABASE)
        c.psql(add_events(self.events, self.orders), dbname=DATABASE)
        c.psql("VACUUM ANALYZE", dbname=DATABASE)
        size = int(c.psql(f"SELECT pg_database_size('{DATABASE}')"))
        self.notes["database_bytes_day1"] = size
        print(f"database {DATABASE}: {size / 2**20:.0f} MiB", flush=True)

        self.config.write_text(
            "version: 1\n"
            f"repositories:\n  main:\n    url: {self.lifeboat_repo}\n    password_file: {self.password_file}\n"
            "sources:\n"
            f"  {DATABASE}:\n    type: pg_dump\n    host: 127.0.0.1\n    port: {c.port}\n    user: postgres\n"
            f"    databases: [{DATABASE}]\n"
        )
        subprocess.run(self.lifeboat("init"), env={**os.environ, **self.lifeboat_env}, check=True, capture_output=True)
        self.fc_dir.mkdir()
        for name, repo in self.borg.items():
            options = "\n          options: --compress=0" if "Z0" in name else ""
            self.borg_configs[name].write_text(
                "location:\n    source_directories: []\n"
                f"    repositories:\n        - {repo}\n"
                f"    borgmatic_source_directory: {self.work / ('borgmatic-' + name.replace(' ', ''))}\n"
                f"storage:\n    encryption_passphrase: {PASSWORD}\n"
                "retention:\n    keep_daily: 7\n"
                "hooks:\n    postgresql_databases:\n"
                f"        - name: {DATABASE}\n          hostname: 127.0.0.1\n          port: {c.port}\n"
                f"          username: postgres{options}\n"
            )
            self.borg_configs[name].chmod(0o600)
            subprocess.run(
                ["borgmatic", "--config", str(self.borg_configs[name]), "init", "--encryption", "repokey-blake2"],
                check=True,
                capture_output=True,
            )

    def workload(self, day: int) -> None:
        """One day of the shop: 3 % new orders and events, the hot set updated, old events deleted."""
        c = self.cluster
        new_orders = max(300, self.orders * 3 // 100)
        first = int(c.psql("SELECT max(id) FROM orders", dbname=DATABASE)) + 1
        c.psql(add_orders(first, new_orders, self.customers), dbname=DATABASE)
        c.psql(add_events(max(300, self.events * 3 // 100), first + new_orders - 1), dbname=DATABASE)
        hot = max(100, self.orders // 100)
        c.psql(
            f"UPDATE orders SET status = ({STATUSES})[1 + (id + {day}) % 6], amount = amount + 1 "
            f"WHERE id > (SELECT max(id) FROM orders) - {hot * 5} AND id % 5 = {day % 5}",
            dbname=DATABASE,
        )
        c.psql(f"DELETE FROM events WHERE id < (SELECT min(id) FROM events) + {self.events // 200}", dbname=DATABASE)
        c.psql("VACUUM ANALYZE", dbname=DATABASE)

    def measure(self, tool: str, scenario: str, argv: list[str], *, env: dict[str, str] | None = None) -> Measurement:
        drop_caches()
        result = run_measured(tool, scenario, argv, env=env)
        self.results.append(result)
        print(f"  {tool:14} {scenario:18} {result.wall_s:7.1f}s  {result.peak_rss_mib:6.0f} MiB", flush=True)
        return result

    def day(self, day: int) -> None:
        print(f"day {day}", flush=True)
        scenario = f"backup day {day}"
        self.measure("lifeboat", scenario, self.lifeboat("-q", "backup", "--source", DATABASE), env=self.lifeboat_env)
        for name in self.borg:
            self.measure(name, scenario, ["borgmatic", "--config", str(self.borg_configs[name]), "create"])
        target = self.fc_dir / f"{DATABASE}-day{day}.dump"
        self.measure(
            "pg_dump -Fc",
            scenario,
            [find_program("pg_dump"), "-Fc", "-f", str(target), DATABASE],
            env=self.pg_env,
        )
        self.notes[f"repo_bytes_day{day}"] = {
            "lifeboat": dir_bytes(self.lifeboat_repo),
            **{name: dir_bytes(repo) for name, repo in self.borg.items()},
            "pg_dump -Fc": dir_bytes(self.fc_dir),
        }

    def restores(self) -> None:
        print("restores from the last day", flush=True)
        c = self.cluster
        last = self.fc_dir / f"{DATABASE}-day{self.days}.dump"
        rows = c.psql(f"SELECT count(*) FROM {TABLE}", dbname=DATABASE)
        self.notes["orders_rows"] = int(rows)
        # the whole database, into a new one
        self.measure(
            "lifeboat",
            "restore database",
            self.lifeboat("-q", "restore", "pg-dump", "latest", "--source", DATABASE, "--database", DATABASE, "--as",
                          "shop_lifeboat"),
            env=self.lifeboat_env,
        )  # fmt: skip
        c.psql("CREATE DATABASE shop_fc")
        self.measure(
            "pg_dump -Fc",
            "restore database",
            [find_program("pg_restore"), "--exit-on-error", "-d", "shop_fc", str(last)],
            env=self.pg_env,
        )
        # borgmatic restores whole databases over the configured one (it has no new-name option)
        self.measure(
            "borgmatic",
            "restore database",
            ["borgmatic", "--config", str(self.borg_configs["borgmatic"]), "restore", "--archive", "latest"],
        )
        # one table, into an empty database
        c.psql("CREATE DATABASE shop_table_lifeboat")
        self.measure(
            "lifeboat",
            "restore one table",
            self.lifeboat("-q", "restore", "pg-dump", "latest", "--source", DATABASE, "--database", DATABASE, "--as",
                          "shop_table_lifeboat", "--table", TABLE, "--force"),
            env=self.lifeboat_env,
        )  # fmt: skip
        c.psql("CREATE DATABASE shop_table_fc")
        self.measure(
            "pg_dump -Fc",
            "restore one table",
            [find_program("pg_restore"), "--exit-on-error", "-t", TABLE, "-d", "shop_table_fc", str(last)],
            env=self.pg_env,
        )
        for database in ("shop_lifeboat", "shop_fc", DATABASE, "shop_table_lifeboat", "shop_table_fc"):
            found = c.psql(f"SELECT count(*) FROM {TABLE}", dbname=database)
            if found != rows:
                raise SystemExit(f"{database}: {found} rows in {TABLE}, expected {rows}")
        self.notes["restores_checked"] = "every restored copy has the source's row count in orders"

    def close(self, keep: bool) -> None:
        if keep:
            print(f"kept {self.work}")
            return
        self.cluster.destroy()
        shutil.rmtree(self.work, ignore_errors=True)


def table(bench: Bench) -> str:
    tools = ["lifeboat", *bench.borg, "pg_dump -Fc"]
    by = {(m.tool, m.scenario): m for m in bench.results}
    lines = [
        f"# Logical backups, {bench.days} days: Lifeboat beside borgmatic + Borg and pg_dump -Fc files",
        "",
        f"Database `{DATABASE}` at scale {bench.scale}: {bench.notes['database_bytes_day1'] / 2**20:.0f} MiB on day 1; "
        "each day 3 % new orders and events, a hot set of recent orders updated, old events deleted, VACUUM.",
        "Each run from a cold page cache. Peak RSS is the largest process of the tool's tree.",
        "",
        "## Daily backups (wall time, s / peak RSS, MiB)",
        "",
        "| day | " + " | ".join(tools) + " |",
        "|---|" + "---|" * len(tools),
    ]
    for day in range(1, bench.days + 1):
        cells = []
        for tool in tools:
            m = by.get((tool, f"backup day {day}"))
            cells.append(f"{m.wall_s:.1f} / {m.peak_rss_mib:.0f}" if m else "-")
        lines.append(f"| {day} | " + " | ".join(cells) + " |")
    final = bench.notes[f"repo_bytes_day{bench.days}"]
    assert isinstance(final, dict)
    fc = final["pg_dump -Fc"]
    lines += [
        "",
        f"## Repository bytes after {bench.days} days",
        "",
        "| tool | bytes | MiB | vs the -Fc files |",
        "|---|---|---|---|",
    ]
    for tool in tools:
        lines.append(f"| {tool} | {final[tool]} | {final[tool] / 2**20:.0f} | {final[tool] / fc:.2f}x |")
    mean = {
        tool: sum(by[(tool, f"backup day {d}")].wall_s for d in range(1, bench.days + 1)) / bench.days for tool in tools
    }
    lines += [
        "",
        "## Mean daily wall time",
        "",
        "| tool | seconds | vs lifeboat |",
        "|---|---|---|",
        *[f"| {tool} | {mean[tool]:.1f} | {mean[tool] / mean['lifeboat']:.2f}x |" for tool in tools],
        "",
        "## Restores from the last day (wall time, s / peak RSS, MiB)",
        "",
        "| tool | whole database | one table (`orders`) |",
        "|---|---|---|",
    ]
    for tool in ("lifeboat", "borgmatic", "pg_dump -Fc"):
        cells = []
        for scenario in ("restore database", "restore one table"):
            m = by.get((tool, scenario))
            cells.append(f"{m.wall_s:.1f} / {m.peak_rss_mib:.0f}" if m else "not possible")
        lines.append(f"| {tool} | " + " | ".join(cells) + " |")
    lines += [
        "",
        'Targets (issue "Logical backups"): repository after seven days at most 0.5x the -Fc files and no larger '
        "than borgmatic's; daily wall time at most borgmatic's; one table restored without the whole database.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    for binary, package in (("borg", "borgbackup"), ("borgmatic", "borgmatic"), ("time", "time")):
        require(binary, package)
    work = Path(tempfile.mkdtemp(prefix="lifeboat-logical-bench-", dir="/var/tmp"))
    bench = Bench(work, scale=args.scale, days=args.days)
    try:
        bench.setup()
        for day in range(1, args.days + 1):
            if day > 1:
                bench.workload(day)
            bench.day(day)
        bench.restores()
    finally:
        bench.close(args.keep)
    context = {
        **machine(),
        "scale": args.scale,
        "days": args.days,
        "versions": {
            "borg": version_of(["borg", "--version"]),
            "borgmatic": version_of(["borgmatic", "--version"]),
            "pg_dump": version_of([find_program("pg_dump"), "--version"]),
        },
        **bench.notes,
    }
    path = write_results("logical", bench.results, context, table(bench))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
