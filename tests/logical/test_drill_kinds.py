"""``lifeboat drill`` of the kinds beside PostgreSQL: a redis source drilled in a scratch
redis-server answering Redis-command queries, a files source restored into a scratch directory
and compared with what its snapshot recorded; nothing is left behind."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifeboat.errors import ExitCode
from tests.conftest import Cli
from tests.servers.redis import PASSWORD, RedisServer, redis_server

__all__ = ["redis_server"]  # the session fixture, used by name

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("redis")]


def scratch_servers(scratch: Path) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in ps.splitlines() if str(scratch) in line]


@pytest.fixture
def setup(cli: Cli, tmp_path: Path, redis_server: RedisServer) -> tuple[Cli, Path]:
    assert cli("init", "--kdf-memory", "8MiB").code == 0
    password_file = tmp_path / "redis-password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    files = tmp_path / "files"
    (files / "sub").mkdir(parents=True)
    (files / "a.txt").write_text("alpha\n")
    (files / "sub" / "b.bin").write_bytes(os.urandom(200_000))
    app_db = tmp_path / "app.db"
    with sqlite3.connect(app_db) as conn:
        conn.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, at TEXT)")
        rows = [("a", "2026-11-30T07:00:00+00:00"), ("b", "2026-11-30T07:05:00+00:00")]
        conn.executemany("INSERT INTO notes(body, at) VALUES (?, ?)", rows)
    conn.close()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    config = tmp_path / "lifeboat.yaml"
    drill = {"scratch_dir": str(scratch)}
    config.write_text(
        json.dumps(
            {
                "sources": {
                    "cache": {
                        "type": "redis",
                        "host": "127.0.0.1",
                        "port": redis_server.port,
                        "password_file": str(password_file),
                        "rpo": "1h",
                        "drill": {
                            **drill,
                            "queries": [
                                {"name": "keys", "sql": "DBSIZE", "min": 2},
                                {"name": "greeting", "sql": "GET greeting", "equals": "hello"},
                            ],
                        },
                    },
                    "docs": {"type": "files", "paths": [str(files)], "drill": drill},
                    "app": {
                        "type": "sqlite",
                        "paths": [str(app_db)],
                        "drill": {
                            **drill,
                            "target": "2100-01-01T00:00:00Z",
                            "queries": [{"name": "notes", "sql": "SELECT count(*) FROM notes", "min": 2, "max": 2}],
                            "freshness": {"sql": "SELECT max(at) FROM notes", "database": "app.db"},
                        },
                    },
                }
            }
        )
    )
    env = {"LIFEBOAT_CONFIG": str(config), "LIFEBOAT_STATE_DIR": str(tmp_path / "state")}

    def run(*args: str, env_more: dict[str, str] | None = None) -> object:
        return cli(*args, env={**env, **(env_more or {})})

    redis_server.cli("FLUSHALL")
    redis_server.cli("SET", "greeting", "hello")
    redis_server.cli("SET", "other", "x")
    return run, scratch  # type: ignore[return-value]


def test_a_redis_and_a_files_source_pass_their_drills(setup: tuple[Cli, Path]) -> None:
    run, scratch = setup
    assert run("backup", "--source", "cache").code == 0
    assert run("backup", "--source", "docs").code == 0
    assert run("backup", "--source", "app").code == 0

    result = run("--json", "drill", "--source", "cache", "--source", "docs", "--source", "app")

    assert result.code == 0, result
    drills = {d["source"]: d for d in json.loads(result.stdout)["drills"]}
    cache, docs = drills["cache"], drills["docs"]
    assert cache["status"] == "passed" and docs["status"] == "passed"
    assert {q["name"]: q["value"] for q in cache["queries"]} == {"keys": "2", "greeting": "hello"}
    assert [p["name"] for p in cache["phases"]] == ["plan", "start", "validate"]
    assert 0 <= cache["achieved_rpo_seconds"] < 600
    assert docs["restored_files"] == 2 and docs["restored_bytes"] == 200_006
    app = drills["app"]
    assert app["status"] == "passed", app
    assert app["queries"][0]["value"] == "2" and app["newest_row"] == "2026-11-30T07:05:00+00:00"
    # a time target: the newest snapshot at or before it; achieved RPO = that time − the newest row
    assert (
        app["achieved_rpo_seconds"]
        == (datetime(2100, 1, 1, tzinfo=UTC) - datetime(2026, 11, 30, 7, 5, tzinfo=UTC)).total_seconds()
    )
    assert list(scratch.iterdir()) == [] and scratch_servers(scratch) == []


def test_a_redis_drill_with_a_failing_query_fails_and_names_it(
    setup: tuple[Cli, Path], redis_server: RedisServer
) -> None:
    run, scratch = setup
    redis_server.cli("SET", "greeting", "goodbye")
    assert run("backup", "--source", "cache").code == 0

    result = run("drill", "--source", "cache")

    assert result.code == ExitCode.INTEGRITY, result
    assert "validation query 'greeting' returned 'goodbye', expected 'hello'" in result.stderr
    assert list(scratch.iterdir()) == [] and scratch_servers(scratch) == []


def test_a_kind_without_a_scratch_instance_is_verified_and_says_so(cli: Cli, tmp_path: Path) -> None:
    assert cli("init", "--kdf-memory", "8MiB").code == 0
    config = tmp_path / "lifeboat.yaml"
    config.write_text(json.dumps({"sources": {"dump": {"type": "command", "command": ["echo", "hello"], "drill": {}}}}))
    env = {"LIFEBOAT_CONFIG": str(config)}
    assert cli("backup", "--source", "dump", env=env).code == 0

    result = cli("--json", "drill", env=env)

    assert result.code == 0, result
    (drill,) = json.loads(result.stdout)["drills"]
    assert drill["status"] == "passed" and drill["rto_seconds"] is None
    assert [p["name"] for p in drill["phases"]] == ["plan", "verify"]
    assert drill["method"].startswith("the command kind's verify only")
    assert any("not restored" in note and "no RTO was measured" in note for note in drill["notes"])


def test_drill_usage_mistakes(cli: Cli, tmp_path: Path) -> None:
    assert cli("init", "--kdf-memory", "8MiB").code == 0
    no_config = cli("drill")
    assert no_config.code == ExitCode.USAGE and "a drill needs the configuration file" in no_config.stderr
    config = tmp_path / "lifeboat.yaml"
    config.write_text(json.dumps({"sources": {"docs": {"type": "files", "paths": [str(tmp_path)]}}}))
    env = {"LIFEBOAT_CONFIG": str(config)}
    bad_target = cli("drill", "--source", "docs", "--target", "soon", env=env)
    assert bad_target.code == ExitCode.USAGE and "'soon' is not latest, random or an ISO 8601 time" in bad_target.stderr
    unknown = cli("drill", "--source", "nope", env=env)
    assert unknown.code == ExitCode.USAGE and "no configured source 'nope'" in unknown.stderr
    nothing = cli("drill", env=env)  # a files source without a drill section is not drilled by default
    assert nothing.code == ExitCode.USAGE and "no source to drill" in nothing.stderr
    bad_format = cli("drill", "report", "--format", "pdf", env=env)
    assert bad_format.code == ExitCode.USAGE and "use one of text, json, markdown, html" in bad_format.stderr
