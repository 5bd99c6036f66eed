"""The SQL session Lifeboat holds with a server (a psql process, sources/tools/psql.py): what it
sends arrives as written, what the server says comes back whole, a refused statement or a
lost connection is an error rather than a hang, a killed Lifeboat never leaves the server in
backup mode, and ``backup postgres`` loads no PostgreSQL driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.errors import PostgresError
from lifeboat.sources.postgres.server import PgServer
from lifeboat.sources.tools.pg import Connection
from lifeboat.sources.tools.psql import bind
from tests.integration.test_process_footprint import REPORTER
from tests.postgres.conftest import PgWorld, WorldFactory, wait_until

HOSTILE = "it's a \\ path\nwith\ttab, a 'quote', %s, :var, \\echo and é"


def _connection(world: PgWorld) -> Connection:
    c = world.cluster
    return Connection(host=str(c.socket_dir), port=c.port, user="postgres")


@pytest.fixture(scope="module")
def world(worlds: WorldFactory) -> PgWorld:
    return worlds()


def test_parameters_and_answers_pass_through_unchanged(world: PgWorld) -> None:
    with PgServer.connect(_connection(world)) as server:
        assert server.value("SELECT %s::text", (HOSTILE,)) == HOSTILE
        assert server.rows("SELECT %s::text, %s::int, %s::bool, %s::text", (HOSTILE, 7, True, None)) == [
            (HOSTILE, "7", "t", None)
        ]
        names = ["wal_level", "archive_mode"]
        found = server.rows("SELECT name FROM pg_settings WHERE name = ANY(%s) ORDER BY name", (names,))
        assert found == [("archive_mode",), ("wal_level",)]
        assert server.rows("SELECT g FROM generate_series(1, 3) g WHERE g::text LIKE '%%'") == [("1",), ("2",), ("3",)]
        info = server.info()
        assert info.superuser is True and info.in_recovery is False and info.data_checksums in (True, False)
        assert info.system_id == world.cluster.psql("SELECT system_identifier FROM pg_control_system()")
        stats = server.archiver()
        assert isinstance(stats["archived_count"], int)
        assert stats["last_archived_time"] is None or stats["last_archived_time"].tzinfo is not None


def test_a_refused_statement_is_an_error_and_the_session_goes_on(world: PgWorld) -> None:
    with PgServer.connect(_connection(world)) as server:
        with pytest.raises(PostgresError, match=r"refused 'SELECT pg_no_such_function'.*does not exist"):
            server.rows("SELECT pg_no_such_function(%s)", (1,))
        with pytest.raises(PostgresError, match=r"refused 'ALTER SYSTEM SET work_mem'.*invalid value"):
            server.alter_system("work_mem", "x'y")
        assert server.value("SELECT 1") == "1"  # autocommit: the failure took nothing else with it


def test_a_query_refused_while_its_rows_stream_is_an_error(world: PgWorld) -> None:
    """psql leaves its ERROR variable as it was when a COPY fails during execution (a setting a
    role may not read): the error on its standard error must still reach the caller, not an
    empty answer (health's probe once crashed on the missing row)."""
    world.cluster.psql("DO $$ BEGIN CREATE ROLE lifeboat_plain LOGIN; EXCEPTION WHEN duplicate_object THEN END $$")
    c = world.cluster
    plain = Connection(host=str(c.socket_dir), port=c.port, user="lifeboat_plain", dbname="postgres")
    with PgServer.connect(plain) as server:
        assert server.value("SELECT 1") == "1"  # a success first: ERROR is then "false"
        with pytest.raises(PostgresError, match=r"refused 'SELECT current_setting'.*data_directory"):
            server.rows("SELECT current_setting('data_directory')")
        assert server.value("SELECT current_user") == "lifeboat_plain"


def test_backup_mode_round_trip_names_the_stop_and_its_time(world: PgWorld) -> None:
    with PgServer.connect(_connection(world)) as server:
        start = server.backup_start("lifeboat session test")
        stop = server.backup_stop()
    assert stop.lsn >= start
    assert "lifeboat session test" in stop.label_file
    assert abs(stop.stop_time - datetime.now(UTC)) < timedelta(minutes=5)


def test_a_connection_the_server_drops_is_an_error_not_a_hang(world: PgWorld) -> None:
    with PgServer.connect(_connection(world), application_name="lifeboat victim") as server:
        world.cluster.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lifeboat victim'"
        )
        with pytest.raises(PostgresError, match="connection to server was lost"):
            server.info()


def test_an_unreachable_server_is_a_one_line_error(world: PgWorld) -> None:
    c = world.cluster
    with pytest.raises(PostgresError, match=r"cannot connect to PostgreSQL at .*: .*failed") as caught:
        PgServer.connect(Connection(host=str(c.socket_dir), port=c.port, user="no_such_role"))
    assert "\n" not in str(caught.value)


def test_a_killed_lifeboat_never_leaves_the_server_in_backup_mode(world: PgWorld) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from lifeboat.sources.postgres.server import PgServer\n"
            "from lifeboat.sources.tools.pg import Connection\n"
            f"server = PgServer.connect(Connection(host={str(world.cluster.socket_dir)!r}, port={world.cluster.port},"
            " user='postgres'), application_name='lifeboat killed')\n"
            "server.backup_start('killed')\n"
            "print('in backup mode', flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "in backup mode"

    def sessions() -> int:
        return int(
            world.cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lifeboat killed'")
        )

    assert sessions() == 1
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    wait_until(lambda: sessions() == 0, timeout=30, what="the killed backup's session to end")


def test_backup_postgres_loads_no_postgresql_driver(world: PgWorld) -> None:
    done = subprocess.run(
        [sys.executable, "-c", REPORTER, "--json", "backup", "postgres", *world.conn_args(), "--archive-wait", "60s"],
        env={**os.environ, **world.env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["snapshot"]
    line = next(x for x in done.stderr.splitlines() if x.startswith("LOADED "))
    modules = set(json.loads(line.removeprefix("LOADED ")))
    assert not {m for m in modules if m.split(".")[0] in ("psycopg", "psycopg_binary", "psycopg_c")}


@pytest.mark.parametrize(
    ("sql", "params", "bound"),
    [
        ("SELECT %s", ("a'b",), "SELECT E'a''b'"),
        ("SELECT %s, %s", (None, False), "SELECT NULL, false"),
        ("SELECT %s", (["x", "y\\"],), "SELECT ARRAY[E'x', E'y\\\\']::text[]"),
        ("SELECT '%%' || %s", (3,), "SELECT '%' || 3"),
    ],
)
def test_parameters_become_literals(sql: str, params: tuple[object, ...], bound: str) -> None:
    assert bind(sql, params) == bound  # type: ignore[arg-type]


def test_a_parameter_count_that_does_not_match_is_refused() -> None:
    with pytest.raises(ValueError, match="too few"):
        bind("SELECT %s, %s", ("a",))
    with pytest.raises(ValueError, match="too many"):
        bind("SELECT %s", ("a", "b"))
    with pytest.raises(ValueError, match="NUL"):
        bind("SELECT %s", ("a\0b",))
