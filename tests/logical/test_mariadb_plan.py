"""``restore mariadb … --plan``: a physical backup's data directory and a logical backup's
SQL file or server, refused as the restore refuses; nothing written, no file created."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.logical.test_mariadb import World, loaded, world
from tests.servers.mariadb import mariadb_server, new_directory

__all__ = ["loaded", "mariadb_server", "world"]  # fixtures, used by name

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mariadb")]


def test_a_logical_plan_names_the_dump_and_creates_no_sql_file(world: World) -> None:
    assert world.backup().code == 0
    sql = world.directory / "shop.sql"
    planned = world.lifeboat(
        "--json", "restore", "mariadb", "latest", "-s", "db", "-d", "shop", "--sql", str(sql), "--plan"
    )
    assert planned.code == 0, planned
    plan = json.loads(planned.stdout)
    (write,) = plan["writes"]
    assert (write["what"], write["where"], write["state"]) == ("SQL of database 'shop'", str(sql), "absent")
    assert write["bytes"] > 0 and not sql.exists()

    sql.write_text("mine")
    args = ("restore", "mariadb", "latest", "-s", "db", "-d", "shop", "--sql", str(sql))
    real, refused = world.lifeboat(*args), world.lifeboat(*args, "--plan")
    assert refused.code == real.code == 2 and refused.stderr == real.stderr, refused
    assert sql.read_text() == "mine"

    server = world.lifeboat("--json", "restore", "mariadb", "latest", "-s", "db", "-d", "crm", "--as", "crm2", "--plan")
    assert server.code == 0, server
    plan = json.loads(server.stdout)
    assert plan["writes"][0]["what"] == "database 'crm' as database 'crm2'" and plan["space"] == []
    assert any("whether database 'crm2' exists" in line for line in plan["unchecked"])


def test_a_physical_plan_refuses_a_non_empty_directory(world: World) -> None:
    assert world.backup("phys").code == 0
    target = new_directory("mdbp.") / "data"
    target.mkdir()
    (target / "stray").write_text("x")
    args = ("restore", "mariadb", "latest", "-s", "phys", "--target-dir", str(target))
    real, refused = world.lifeboat(*args), world.lifeboat(*args, "--plan")
    assert refused.code == real.code == 1 and refused.stderr == real.stderr, refused
    (target / "stray").unlink()
    planned = world.lifeboat("--json", *args, "--plan")
    assert planned.code == 0, planned
    plan = json.loads(planned.stdout)
    assert plan["writes"][0]["where"] == str(target) and plan["writes"][0]["state"] == "empty"
    assert list(target.iterdir()) == []
    shutil.rmtree(target.parent, ignore_errors=True)
