"""``lifeboat drill`` on a real cluster: a good backup passes with its RTO phases and achieved
RPO; a damaged pack, a missing WAL object and a failing validation query fail it and say why;
the time limit, Ctrl-C and SIGTERM leave no scratch process or directory; the drill never
writes to the source cluster or its archive; ``drill report`` renders every format."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lifeboat.errors import ExitCode
from lifeboat.sources.postgres.pgdata import read_system_id
from lifeboat.sources.tools.pgcluster import chown_tree
from tests.postgres.conftest import OS_USER, PgWorld, WorldFactory, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-drill")]

SHOP = """
CREATE TABLE customers(id int PRIMARY KEY, name text);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 1200) g;
CREATE TABLE orders(id serial PRIMARY KEY, customer int REFERENCES customers(id), created_at timestamptz);
INSERT INTO orders(customer, created_at) SELECT 1 + g % 1200, now() - interval '1 hour' + g * interval '1 second'
  FROM generate_series(1, 500) g;
"""

QUERIES = """
      queries:
        - {name: customers, sql: "SELECT count(*) FROM customers", min: 1000, max: 5000}
        - {name: no-orphans, equals: "0",
           sql: "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer WHERE c.id IS NULL"}
      freshness: {sql: "SELECT max(created_at) FROM orders"}
"""


MOMENTS: dict[str, str] = {}


@pytest.fixture(scope="module")
def world(worlds: WorldFactory) -> PgWorld:
    world = worlds()
    c = world.cluster
    c.psql("CREATE DATABASE shop")
    c.psql(SHOP, dbname="shop")
    config = write_config(world, world.base)
    backed = world.lifeboat("backup", "postgres", "--source", "shop", "--archive-wait", "60s",
                            env=drill_env(world, config))  # fmt: skip
    assert backed.code == 0, backed
    time.sleep(0.3)
    MOMENTS["before the last order"] = c.psql("SELECT clock_timestamp()")
    time.sleep(0.3)
    c.psql("INSERT INTO orders(customer, created_at) VALUES (7, now())", dbname="shop")
    world.wait_archived(world.switch_wal())
    return world


def scratch_parent(world: PgWorld) -> Path:
    path = world.new_dir(f"scratch-{time.monotonic_ns()}")
    path.mkdir()
    os.chmod(path, 0o755)
    return path


def write_config(world: PgWorld, scratch: Path, *, drill: str = QUERIES, extra: str = "") -> Path:
    c = world.cluster
    config = world.base / f"drill-{time.monotonic_ns()}.yaml"
    config.write_text(
        "version: 1\nsources:\n  shop:\n    type: postgres\n"
        f"    data_directory: {c.data_dir}\n    host: {c.socket_dir}\n    port: {c.port}\n"
        f"    user: postgres\n    dbname: shop\n    rto: 30min\n    rpo: 1d\n{extra}"
        f"    drill:\n      scratch_dir: {scratch}\n{drill}"
    )
    return config


def drill_env(world: PgWorld, config: Path, **more: str) -> dict[str, str]:
    return {"LIFEBOAT_CONFIG": str(config), "LIFEBOAT_STATE_DIR": str(world.base / "state"), **more}


def scratch_processes(under: Path) -> list[str]:
    """Processes started in or for a scratch directory below ``under`` (this test's: other tests,
    on other workers, run their own): by their command line or their working directory (a WAL
    fetcher the scratch server started runs in its data directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if ("lifeboat-scratch-" in args or "lifeboat-scratch-" in cwd) and (str(under) in args or str(under) in cwd):
            found.append(f"{entry.name} {args} (in {cwd})")
    return found


def archiver_stats(world: PgWorld) -> str:
    return world.cluster.psql("SELECT archived_count, last_archived_wal, failed_count FROM pg_stat_archiver")


def archive_listing(repo: Path) -> list[str]:
    return sorted(str(p.relative_to(repo)) for p in (repo / "wal").rglob("*") if p.is_file())


def damaged_copy(world: PgWorld, label: str) -> Path:
    copy = world.base / f"repo-{label}"
    shutil.copytree(world.repo_dir, copy)
    chown_tree(copy, OS_USER)
    return copy


def test_a_good_backup_passes_with_its_phases_and_achieved_rpo_and_touches_nothing(world: PgWorld) -> None:
    newest_segment = max(Path(p).name for p in archive_listing(world.repo_dir) if len(Path(p).name) == 24)
    wait_until(lambda: archiver_stats(world).split("|")[1] == newest_segment, what="the archiver's statistics")
    before_stats = archiver_stats(world)
    before_wal = archive_listing(world.repo_dir)
    newest = world.cluster.psql("SELECT max(created_at) FROM orders", dbname="shop")
    scratch = scratch_parent(world)
    config = write_config(world, scratch)

    result = world.lifeboat("--json", "drill", "--source", "shop", env=drill_env(world, config), timeout=600)

    assert result.code == 0, result
    doc = json.loads(result.stdout)
    assert doc["status"] == "passed"
    (drill,) = doc["drills"]
    assert drill["source"] == "shop" and drill["status"] == "passed" and drill["reasons"] == []
    phases = [p["name"] for p in drill["phases"]]
    assert phases[:2] == ["plan", "restore"] and phases[-1] == "validate"
    assert "start" in phases and "replay" in phases
    assert drill["rto_seconds"] == pytest.approx(sum(p["seconds"] for p in drill["phases"][:-1]), abs=0.01)
    assert drill["rto_seconds"] < drill["rto_objective_seconds"] == 1800
    assert {q["name"]: (q["value"], q["ok"]) for q in drill["queries"]} == {
        "customers": ("1200", True),
        "no-orphans": ("0", True),
    }
    # the achieved RPO is the drill's start (target latest) minus the newest order's time
    from datetime import datetime

    assert datetime.fromisoformat(drill["newest_row"]) == datetime.fromisoformat(newest)
    expected = (datetime.fromisoformat(drill["recovered_to"]) - datetime.fromisoformat(newest)).total_seconds()
    assert drill["achieved_rpo_seconds"] == pytest.approx(expected, abs=0.01)
    assert 0 < drill["achieved_rpo_seconds"] < 600
    assert drill["restored_bytes"] > 0 and drill["snapshot"]

    # never archived, never wrote a timeline or segment into the repository, nothing left behind
    assert archiver_stats(world) == before_stats
    assert archive_listing(world.repo_dir) == before_wal
    assert list(scratch.iterdir()) == []
    assert scratch_processes(scratch) == []

    # recorded in the repository: the history survives the loss of this host's state directory
    assert drill["record"]
    shutil.rmtree(world.base / "state", ignore_errors=True)
    records = json.loads(world.lifeboat("--json", "records", "--kind", "drill", env=drill_env(world, config)).stdout)
    (record,) = [r for r in records["records"] if r["id"] == drill["record"]]
    assert record["source"] == "shop" and record["ok"] is True and record["summary"]["status"] == "passed"
    history = world.lifeboat("drill", "report", "--format", "json", env=drill_env(world, config))
    assert history.code == 0, history
    assert any(d["snapshot"] == drill["snapshot"] for d in json.loads(history.stdout)["drills"])

    # a restore plan estimates its time from this drill's measured rates
    planned = world.lifeboat(
        "--json", "restore", "postgres", "--source", "shop", "--target-dir", str(world.new_dir("planned")), "--plan",
        env=drill_env(world, config),
    )  # fmt: skip
    assert planned.code == 0, planned
    estimate = json.loads(planned.stdout)["estimate"]
    assert estimate["seconds"] is not None and drill["started"] in estimate["basis"], estimate


def test_a_drill_to_a_time_recovers_what_the_database_held_then(world: PgWorld) -> None:
    at = MOMENTS["before the last order"]
    scratch = scratch_parent(world)
    config = write_config(world, scratch)

    result = world.lifeboat("--json", "drill", "--target", at, env=drill_env(world, config), timeout=600)

    assert result.code == 0, result
    (drill,) = json.loads(result.stdout)["drills"]
    from datetime import datetime

    asked = datetime.fromisoformat(at)
    assert drill["target"] == f"time {asked.isoformat()}" and datetime.fromisoformat(drill["recovered_to"]) == asked
    # the last order came after the target: the newest row is the shop's own, about an hour old then
    newest = datetime.fromisoformat(drill["newest_row"])
    assert newest < asked and drill["achieved_rpo_seconds"] == pytest.approx((asked - newest).total_seconds())
    assert 2000 < drill["achieved_rpo_seconds"] < 4000
    assert drill["status"] == "passed"
    assert list(scratch.iterdir()) == [] and scratch_processes(scratch) == []


def test_a_failing_validation_query_fails_the_drill_and_names_it(world: PgWorld) -> None:
    scratch = scratch_parent(world)
    queries = '      queries:\n        - {name: big-spenders, sql: "SELECT count(*) FROM customers", min: 100000}\n'
    config = write_config(world, scratch, drill=queries)

    result = world.lifeboat("drill", env=drill_env(world, config), timeout=600)

    assert result.code == ExitCode.INTEGRITY, result
    assert "validation query 'big-spenders' returned 1200, below the minimum 100000" in result.stderr
    assert "shop: failed" in result.stderr
    assert list(scratch.iterdir()) == [] and scratch_processes(scratch) == []
    # a failed drill is recorded too, with its reason
    report = json.loads(world.lifeboat("drill", "report", "--format", "json", env=drill_env(world, config)).stdout)
    newest = report["drills"][0]
    assert newest["status"] == "failed" and "big-spenders" in newest["reasons"][0]
    assert newest["queries"] == [
        {"name": "big-spenders", "value": "1200", "ok": False, "seconds": newest["queries"][0]["seconds"],
         "problem": "returned 1200, below the minimum 100000"}
    ]  # fmt: skip


def test_a_damaged_pack_fails_the_drill_and_names_it(world: PgWorld) -> None:
    copy = damaged_copy(world, "damaged-pack")
    for pack in sorted((copy / "data").rglob("*"))[:]:
        if pack.is_file():
            data = bytearray(pack.read_bytes())
            data[len(data) // 2] ^= 0x01
            pack.write_bytes(bytes(data))
    scratch = scratch_parent(world)
    config = write_config(world, scratch)

    result = world.lifeboat("drill", env=drill_env(world, config, LIFEBOAT_REPO=str(copy)), timeout=600)

    assert result.code == ExitCode.INTEGRITY, result
    assert "shop: failed" in result.stderr
    # the reason names the damaged files of the base backup and the blob that failed
    assert "the restored cluster is incomplete" in result.stderr
    assert "damaged data, file not restored: blob " in result.stderr.split("did not pass")[1]
    assert list(scratch.iterdir()) == [] and scratch_processes(scratch) == []


def test_a_deleted_wal_object_fails_the_drill_and_names_it(world: PgWorld) -> None:
    copy = damaged_copy(world, "missing-wal")
    system_id = read_system_id(world.cluster.data_dir)
    segments = sorted(p for p in (copy / "wal" / system_id).rglob("*") if p.is_file() and len(p.name) == 24)
    missing = segments[-2]  # a segment before the newest: a latest drill needs it (a gap, not the end)
    missing.unlink()
    scratch = scratch_parent(world)
    config = write_config(world, scratch)

    result = world.lifeboat("drill", env=drill_env(world, config, LIFEBOAT_REPO=str(copy)), timeout=600)

    assert result.code == ExitCode.INTEGRITY, result
    assert f"WAL segment {missing.name} is missing from the archive" in result.stderr
    assert list(scratch.iterdir()) == [] and scratch_processes(scratch) == []


def test_a_drill_over_its_space_limit_is_refused_before_writing(world: PgWorld) -> None:
    scratch = scratch_parent(world)
    config = write_config(world, scratch, drill="      space_limit: 64K\n" + QUERIES)

    result = world.lifeboat("--json", "drill", env=drill_env(world, config), timeout=600)

    assert result.code == ExitCode.ERROR, result
    (drill,) = json.loads(result.stdout)["drills"]
    assert drill["status"] == "failed" and [p["name"] for p in drill["phases"]] == ["plan"]
    assert "over the drill's space limit 64.0 KiB" in drill["reasons"][0], drill["reasons"]
    assert list(scratch.iterdir()) == [] and scratch_processes(scratch) == []


def test_a_drill_over_its_time_limit_is_stopped_and_leaves_nothing(world: PgWorld) -> None:
    scratch = scratch_parent(world)
    slow = '      time_limit: 3s\n      queries:\n        - {name: slow, sql: "SELECT pg_sleep(120)"}\n'
    config = write_config(world, scratch, drill=slow)
    started = time.monotonic()

    result = world.lifeboat("--json", "drill", env=drill_env(world, config), timeout=600)

    assert result.code == ExitCode.OBJECTIVE_MISSED, result
    assert time.monotonic() - started < 60  # stopped, not waited out
    (drill,) = json.loads(result.stdout)["drills"]
    assert drill["status"] == "missed" and drill["reasons"] == ["over the time limit (3.0s)"]
    assert list(scratch.iterdir()) == [] and scratch_processes(scratch) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_drill_leaves_no_scratch_process_or_directory(world: PgWorld, signum: int) -> None:
    scratch = scratch_parent(world)
    config = write_config(world, scratch)
    process = subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "drill"],
        env={**os.environ, **world.env, **drill_env(world, config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not any(scratch.glob("*/data/postmaster.pid")):  # the scratch server is starting
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signum)
    _out, err = process.communicate(timeout=180)
    assert process.returncode == ExitCode.INTERRUPTED, err
    assert list(scratch.iterdir()) == []
    assert scratch_processes(scratch) == []


def test_drill_report_renders_every_format(world: PgWorld, tmp_path: Path) -> None:
    scratch = scratch_parent(world)
    config = write_config(world, scratch)
    env = drill_env(world, config)
    assert world.lifeboat("drill", "--target", "random", env=env, timeout=600).code == 0

    text = world.lifeboat("drill", "report", env=env)
    assert text.code == 0, text
    assert "shop" in text.stdout and "passed" in text.stdout and "RTO" in text.stdout

    markdown = world.lifeboat("drill", "report", "--format", "markdown", env=env)
    assert markdown.stdout.startswith("# Restore drills") and "| shop |" in markdown.stdout

    page = tmp_path / "drills.html"
    html = world.lifeboat("drill", "report", "--format", "html", "--output", str(page), env=env)
    assert html.code == 0, html
    content = page.read_text()
    assert content.startswith("<!DOCTYPE html>") and "<svg" in content and "<h2>shop" in content
    assert "http://" not in content.replace("http://www.w3.org/2000/svg", "")  # no external asset
    # with --json and --output, the file gets the format asked for and stdout the one JSON document
    page.unlink()
    as_json = world.lifeboat("--json", "drill", "report", "--format", "html", "--output", str(page), env=env)
    assert as_json.code == 0, as_json
    assert json.loads(as_json.stdout)["output"] == str(page) and page.read_text().startswith("<!DOCTYPE html>")

    doc = json.loads(world.lifeboat("drill", "report", "--format", "json", "--source", "shop", env=env).stdout)
    assert doc["drills"] and all(d["source"] == "shop" for d in doc["drills"])
    assert any(d["target"].startswith("random: time ") for d in doc["drills"])


def test_a_pg_dump_source_is_drilled_in_a_new_scratch_cluster(world: PgWorld) -> None:
    c = world.cluster
    scratch = scratch_parent(world)
    config = world.base / "dumps.yaml"
    config.write_text(
        "version: 1\nsources:\n  dumps:\n    type: pg_dump\n"
        f"    host: {c.socket_dir}\n    port: {c.port}\n    user: postgres\n    dbname: shop\n"
        f"    drill:\n      scratch_dir: {scratch}\n" + QUERIES
    )
    env = drill_env(world, config)
    backed = world.lifeboat("backup", "--source", "dumps", env=env, timeout=600)
    assert backed.code == 0, backed
    before = archiver_stats(world)

    result = world.lifeboat("--json", "drill", "--source", "dumps", env=env, timeout=600)

    assert result.code == 0, result
    (drill,) = json.loads(result.stdout)["drills"]
    assert drill["status"] == "passed" and drill["kind"] == "pg_dump"
    assert [p["name"] for p in drill["phases"]] == ["plan", "start", "restore", "validate"]
    assert {q["name"]: q["value"] for q in drill["queries"]} == {"customers": "1200", "no-orphans": "0"}
    assert drill["newest_row"] is not None and drill["achieved_rpo_seconds"] >= 0
    assert list(scratch.iterdir()) == [] and scratch_processes(scratch) == []
    assert archiver_stats(world) == before  # the source cluster was only read by pg_dump
