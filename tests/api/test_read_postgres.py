"""``GET /api/v1/postgres/{source}/window`` on a real PostgreSQL cluster archiving into a real
repository, served by a real ``lifeboat serve``: the same document as ``lifeboat --json pg info
--source``; the source's overview and detail carry its WAL window."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from lifeboat.sources.tools.pgcluster import chown_tree
from tests.api.conftest import Api, serve
from tests.postgres.conftest import OS_USER, PgWorld, WorldFactory, server_lifeboat, worlds  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-api")]


def _configure(world: PgWorld) -> dict[str, str]:
    c = world.cluster
    config = world.base / "lifeboat.yaml"
    config.write_text(
        f"""
repositories:
  main:
    url: {world.repo_dir}
    password_file: {world.password_file}
default_repository: main
daemon:
  shutdown_deadline: 20s
  health_check: 1h
  archiving_check: 1h
sources:
  db:
    type: postgres
    data_directory: {c.data_dir}
    host: {c.socket_dir}
    port: {c.port}
    user: postgres
    rpo: 1h
    archive_wait: 60s
    retention: {{recovery_window: 7d}}
"""
    )
    chown_tree(config, OS_USER)
    import os

    return {"LIFEBOAT_STATE_DIR": str(world.base / "state"), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}


@pytest.fixture(scope="module")
def pg_api(worlds: WorldFactory) -> Iterator[tuple[PgWorld, Api]]:  # noqa: F811
    world = worlds()
    env = _configure(world)
    config = str(world.base / "lifeboat.yaml")
    done = world.lifeboat("-c", config, "backup", "--source", "db", env={**env, "LIFEBOAT_REPO": ""})
    assert done.code == 0, done
    world.cluster.psql("CREATE TABLE t AS SELECT 1 AS x")
    world.wait_archived(world.switch_wal())
    api = serve(world.base, env)
    yield world, api
    api.stop()


def _cli(world: PgWorld, api: Api, *args: str) -> Any:
    done = api.cli("--json", *args)
    assert done.code == 0, done
    return json.loads(done.stdout)


def _times(doc: Any) -> Any:
    """``doc`` with every ISO time parsed (the API writes UTC as Z, the CLI as +00:00)."""
    if isinstance(doc, dict):
        return {k: _times(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_times(v) for v in doc]
    if isinstance(doc, str) and len(doc) >= 20 and doc[4:5] == "-" and doc[10:11] == "T":
        try:
            return datetime.fromisoformat(doc.replace("Z", "+00:00"))
        except ValueError:
            return doc
    return doc


def test_the_window_is_pg_info(pg_api: tuple[PgWorld, Api]) -> None:
    world, api = pg_api
    window = api.client("viewer").get("/api/v1/postgres/db/window")
    assert window.status_code == 200, window.text
    mine = window.json()
    cli = _cli(world, api, "pg", "info", "--source", "db")
    assert mine["source"] == "db"
    (cluster,) = mine["clusters"]
    (theirs,) = cli["clusters"]
    guaranteed_mine, guaranteed_theirs = cluster.pop("guaranteed"), theirs.pop("guaranteed")
    assert guaranteed_mine["recovery_window"] == guaranteed_theirs["recovery_window"] == "7d"
    warned_mine, warned_theirs = cluster.pop("warnings"), theirs.pop("warnings")  # "from <now - 7d>"
    assert [w.split(" (from ")[0] for w in warned_mine] == [w.split(" (from ")[0] for w in warned_theirs]
    assert len(warned_mine) == 1  # a new source: no base backup 7 days old
    assert _times(cluster["backups"]) == _times(theirs["backups"])  # every field of each base backup
    assert _times(cluster) == _times(theirs)
    assert cluster["status"] == "ok" and cluster["gap"] is None and len(cluster["backups"]) == 1
    (timeline,) = cluster["wal"]["timelines"]
    assert timeline["timeline"] == 1 and timeline["live"] and timeline["ranges"] and timeline["gaps"] == []
    assert cluster["recoverable"]["earliest_backup"] == cluster["backups"][0]["snapshot"]


def test_the_source_carries_its_wal_window_and_unknown_sources_are_404(pg_api: tuple[PgWorld, Api]) -> None:
    world, api = pg_api
    client = api.client("viewer")
    health = next(s for s in _cli(world, api, "health", "--no-cluster")["sources"] if s["source"] == "db")
    detail = client.get("/api/v1/sources/db").json()
    assert detail["kind"] == "postgres" and detail["wal"]["system_id"] == health["wal"]["system_id"]
    assert detail["wal"]["earliest_backup"] == health["wal"]["earliest_backup"]
    assert {"rpo", "wal"} <= {c["check"] for c in detail["checks"]}
    overview = next(s for s in client.get("/api/v1/overview").json()["sources"] if s["name"] == "db")
    assert overview["oldest_restorable"] is not None and overview["newest_restorable"] is not None
    assert _times(overview["oldest_restorable"]) == _times(health["oldest_restorable"])
    for path in ("/api/v1/postgres/nowhere/window",):
        missing = client.get(path)
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    assert api.client().get("/api/v1/postgres/db/window").status_code == 401
