"""``restore pg-dump … --plan``: the archives pg_restore would load and where, refused as the
restore refuses (a database that exists, a SQL file that exists); nothing loaded or created."""

from __future__ import annotations

import json

import pytest

from tests.postgres.test_pgdump_source import Setup, setup

__all__ = ["setup"]  # the fixture, used by name

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-pgdump-plan")]


def test_a_plan_names_the_archives_and_refuses_an_existing_database(setup: Setup) -> None:
    record = setup.backup()["snapshot"]["extra"]["pg_dump"]
    sizes = {db["name"]: db["bytes"] for db in record["databases"]}
    other = setup.other
    planned = setup.restore("--all", "--globals", "--plan", into=other)
    assert planned.code == 0, planned
    assert "  checked: no database restored into exists on the server" in planned.stdout
    as_json = setup.lifeboat(
        "--json", "restore", "pg-dump", "latest", "--source", "cluster", "--host", str(other.socket_dir),
        "--port", str(other.port), "--user", "postgres", "--all", "--globals", "--plan",
    )  # fmt: skip
    plan = json.loads(as_json.stdout)
    whats = [w["what"] for w in plan["writes"]]
    assert whats == ["globals (roles, tablespaces)", "database appdb", "database shopdb"]
    assert [w["bytes"] for w in plan["writes"][1:]] == [sizes["appdb"], sizes["shopdb"]]
    assert other.psql("SELECT count(*) FROM pg_database WHERE datname IN ('appdb', 'shopdb')") == "0"

    real, refused = setup.restore("--database", "appdb"), setup.restore("--database", "appdb", "--plan")
    assert refused.code == real.code == 1, refused
    assert 'database "appdb" already exists' in refused.stderr and refused.stderr == real.stderr

    sql = setup.world.base / "appdb.sql"
    to_sql = setup.lifeboat("--json", *_args(setup), "--database", "appdb", "--sql", str(sql), "--plan")
    assert to_sql.code == 0, to_sql
    (write,) = json.loads(to_sql.stdout)["writes"]
    assert (write["where"], write["state"], write["bytes"]) == (str(sql), "absent", sizes["appdb"])
    assert not sql.exists()


def _args(setup: Setup) -> tuple[str, ...]:
    c = setup.cluster
    return ("restore", "pg-dump", "latest", "--source", "cluster", "--host", str(c.socket_dir), "--port", str(c.port))
