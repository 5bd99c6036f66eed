"""``restore sqlite … --plan``: each database file the restore would write, its bytes equal
to the restore's, an existing file refused with the restore's own message; nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.logical.test_sqlite import Run, make_db, world

__all__ = ["world"]  # the fixture, used by name

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sqlite")]


def test_a_plan_names_each_database_file_and_the_restore_writes_as_many_bytes(world: tuple[Run, Path, Path]) -> None:
    run, srv, tmp = world
    assert run("backup", "--source", "app").code == 0
    target = tmp / "planned"
    planned = run("--json", "restore", "sqlite", "latest", "--target-dir", str(target), "--plan")
    assert planned.code == 0, planned
    plan = json.loads(planned.stdout)
    assert plan["kind"] == "sqlite" and plan["feasible"] is True
    wheres = sorted(w["where"] for w in plan["writes"])
    assert wheres == sorted(str(target / str(p).lstrip("/")) for p in (srv / "data" / "app.db", srv / "users.db"))
    assert all(w["state"] == "absent" for w in plan["writes"]) and plan["space"][0]["fits"]
    assert not target.exists()

    restored = run("--json", "restore", "sqlite", "latest", "--target-dir", str(target))
    assert restored.code == 0, restored
    written = sum(Path(w["where"]).stat().st_size for w in plan["writes"])
    assert plan["bytes"] == written


def test_a_plan_refuses_an_existing_database_as_the_restore_does(world: tuple[Run, Path, Path], cli: Cli) -> None:
    run, srv, tmp = world
    assert run("backup", "--source", "app").code == 0
    existing = tmp / "live.db"
    make_db(existing, rows=3)
    before = existing.read_bytes()
    args = ("restore", "sqlite", "latest", "--to", str(existing), "--database", str(srv / "users.db"))
    real = run(*args)
    planned = run(*args, "--plan")
    assert planned.code == real.code == 1, planned
    assert planned.stderr == real.stderr and f"{existing} exists" in planned.stderr
    assert f"  refused: {existing} exists" in planned.stdout
    assert existing.read_bytes() == before
    assert run(*args, "--plan", "--force").code == 0
