"""The read resources (docs/api.md "Resources") on a real ``lifeboat serve`` over a real
repository with real backups, a verify and a drill: each answer equals what the CLI says on
the same configuration, unknown names are 404 problems, a viewer reads, no token is 401,
the audit log needs an admin."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, serve
from tests.conftest import PASSPHRASE, run_cli
from tests.daemon.conftest import WAIT

READ_PATHS = (
    "/api/v1/overview",
    "/api/v1/sources",
    "/api/v1/sources/files",
    "/api/v1/snapshots",
    "/api/v1/repository",
    "/api/v1/verify",
    "/api/v1/drills",
    "/api/v1/health",
    "/api/v1/health/nagios",
)


def _config(root: Path) -> str:
    return f"""
repositories:
  main:
    url: {root / "repo"}
    password_file: {root / "passphrase"}
default_repository: main
daemon:
  shutdown_deadline: 20s
  health_check: 1h
  archiving_check: 1h
sources:
  files:
    type: files
    paths: [{root / "data"}]
    rpo: 1d
    rto: 1h
    retention: {{keep_daily: 7}}
    drill: {{target: latest}}
    schedule:
      backup: "0 3 * * *"
  empty:
    type: files
    paths: [{root / "data2"}]
    rpo: 1h
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Two backups of ``files`` (one change between), a verify and a drill of it; ``empty``
    has an RPO and no backup at all (red)."""
    import os

    root = tmp_path_factory.mktemp("read")
    (root / "passphrase").write_bytes(PASSPHRASE + b"\n")
    (root / "passphrase").chmod(0o600)
    (root / "data").mkdir()
    (root / "data2").mkdir()
    (root / "data" / "a.txt").write_text("hello\n")
    (root / "lifeboat.yaml").write_text(_config(root))
    env = {"LIFEBOAT_STATE_DIR": str(root / "state"), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}

    def cli(*args: str) -> None:
        done = run_cli("-c", str(root / "lifeboat.yaml"), *args, env=env)
        assert done.code == 0, done

    cli("init")
    cli("backup", "--source", "files")
    (root / "data" / "b.txt").write_text("world\n" * 100)
    (root / "data" / "a.txt").write_text("hello again\n")
    cli("backup", "--source", "files")
    cli("verify", "--source", "files")
    cli("drill", "--source", "files")
    made = serve(root, env)
    yield made
    made.stop()


def _cli_json(api: Api, *args: str) -> Any:
    done = api.cli("--json", *args)
    assert done.code in (0, 2), done  # health: 2 is CRITICAL (the source 'empty')
    return json.loads(done.stdout)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"] and "hint" in body and "exit_code" in body
    return body


# --- overview and sources ----------------------------------------------------------------------
def test_overview_says_per_source_green_or_red_with_what_to_do(world: Api) -> None:
    cli = _cli_json(world, "health")
    overview = world.client("viewer").get("/api/v1/overview").json()
    by_name = {s["name"]: s for s in overview["sources"]}
    assert set(by_name) == {s["source"] for s in cli["sources"]} == {"files", "empty"}
    files, empty = by_name["files"], by_name["empty"]
    assert files["state"] == "green" and files["health"] == "OK" and files["reasons"] == []
    assert empty["state"] == "red" and empty["health"] == "CRITICAL"
    assert any(r.startswith("rpo: ") for r in empty["reasons"]) and empty["actions"]
    assert overview["state"] == "red" and overview["health"] == cli["state"] == "CRITICAL"
    cli_files = next(s for s in cli["sources"] if s["source"] == "files")
    assert _time(files["newest_restorable"]) == _time(cli_files["newest_restorable"])
    assert files["rpo_seconds"] == 86400 and files["rto_seconds"] == 3600 and files["snapshots"] == 2
    assert 0 <= files["age_seconds"] < 600
    snapshots = _cli_json(world, "snapshots")
    assert files["last_backup"]["snapshot"] == snapshots[-1]["id"]
    drills = _cli_json(world, "records", "--kind", "drill")["records"]
    assert files["last_drill"]["ok"] == drills[0]["ok"] is True
    assert _time(files["last_drill"]["time"]) == _time(drills[0]["time"])
    assert files["last_drill"]["rto_objective_seconds"] == 3600
    assert files["last_verify"]["ok"] is True and files["last_verify"]["reason"] == ""
    assert [j["job"] for j in files["jobs"]] == ["backup:files"]
    assert overview["repository"]["snapshots"] == 2 and overview["repository"]["state"] == "green"


def test_sources_and_a_source_with_its_checks(world: Api) -> None:
    client = world.client("viewer")
    listed = client.get("/api/v1/sources").json()["sources"]
    assert [s["name"] for s in listed] == ["files", "empty"]
    assert listed[0]["retention"] == "keep daily 7" and listed[0]["kind"] == "files"
    detail = client.get("/api/v1/sources/files").json()
    cli = next(s for s in _cli_json(world, "health")["sources"] if s["source"] == "files")
    assert [(c["check"], c["state"]) for c in detail["checks"]] == [(c["check"], c["state"]) for c in cli["checks"]]
    assert {c["check"] for c in detail["checks"]} >= {"rpo", "verify", "drill"}
    red = client.get("/api/v1/sources/empty").json()
    assert red["state"] == "red" and red["last_backup"] is None and red["snapshots"] == 0
    body = _problem(client.get("/api/v1/sources/nowhere"), 404)
    assert "nowhere" in body["detail"]


# --- snapshots ---------------------------------------------------------------------------------
def test_snapshots_equal_the_cli_newest_first_and_page(world: Api) -> None:
    client = world.client("viewer")
    cli = _cli_json(world, "snapshots")
    page = client.get("/api/v1/snapshots").json()
    assert page["total"] == 2 and page["next_before"] is None and page["unreadable"] == []
    got = page["snapshots"]
    assert [s["id"] for s in got] == [s["id"] for s in reversed(cli)]
    for mine, theirs in zip(got, reversed(cli), strict=True):
        assert _time(mine.pop("time")) == _time(theirs.pop("time"))
        assert mine == theirs
    first = client.get("/api/v1/snapshots", params={"limit": 1}).json()
    assert [s["id"] for s in first["snapshots"]] == [cli[-1]["id"]] and first["next_before"] == cli[-1]["id"]
    second = client.get("/api/v1/snapshots", params={"limit": 1, "before": first["next_before"]}).json()
    assert [s["id"] for s in second["snapshots"]] == [cli[0]["id"]] and second["next_before"] is None
    assert client.get("/api/v1/snapshots", params={"source": "empty"}).json()["total"] == 0
    assert client.get("/api/v1/snapshots", params={"source": "files", "kind": "files"}).json()["total"] == 2
    _problem(client.get("/api/v1/snapshots", params={"before": "0" * 64}), 404)
    assert client.get("/api/v1/snapshots", params={"limit": 0}).status_code == 422


def test_a_snapshot_by_id_or_prefix_and_404s(world: Api) -> None:
    client = world.client("viewer")
    cli = _cli_json(world, "snapshots")[0]
    whole = client.get(f"/api/v1/snapshots/{cli['id']}").json()
    assert client.get(f"/api/v1/snapshots/{cli['id'][:8]}").json() == whole
    assert whole["id"] == cli["id"] and whole["tree"] == cli["tree"] and whole["summary"] == cli["summary"]
    _problem(client.get("/api/v1/snapshots/" + "f" * 64), 404)
    _problem(client.get("/api/v1/snapshots/not-an-id"), 404)


def test_the_diff_of_two_snapshots_equals_lifeboat_diff(world: Api) -> None:
    client = world.client("viewer")
    old, new = (s["id"] for s in _cli_json(world, "snapshots"))
    cli = _cli_json(world, "diff", old, new)
    mine = client.get(f"/api/v1/snapshots/{old[:8]}/diff/{new[:8]}").json()
    assert mine["from"] == old and mine["to"] == new and mine["truncated"] is False
    assert mine["changes"] == cli["changes"] and mine["counts"] == cli["counts"]
    assert {(c["change"], Path(c["path"]).name) for c in mine["changes"]} >= {("added", "b.txt"), ("modified", "a.txt")}
    one = client.get(f"/api/v1/snapshots/{old}/diff/{new}", params={"limit": 1}).json()
    assert len(one["changes"]) == 1 and one["truncated"] is True and one["counts"] == cli["counts"]
    _problem(client.get(f"/api/v1/snapshots/{old}/diff/{'e' * 64}"), 404)


def test_a_new_backup_is_listed_and_diffed_within_seconds(world: Api) -> None:
    """The daemon's listing and its blob index follow backups made by another process."""
    client = world.client("viewer")
    before = {s["id"] for s in client.get("/api/v1/snapshots").json()["snapshots"]}
    (world.data / "c.txt").write_text("new\n")
    assert world.cli("backup", "--source", "files").code == 0
    deadline = time.monotonic() + WAIT
    while True:
        listed = client.get("/api/v1/snapshots", params={"limit": 1}).json()["snapshots"]
        if listed and listed[0]["id"] not in before:
            break
        assert time.monotonic() < deadline, "the new snapshot was never listed"
        time.sleep(0.5)
    newest = listed[0]["id"]
    diff = client.get(f"/api/v1/snapshots/{sorted(before)[0]}/diff/{newest}").json()
    assert any(Path(c["path"]).name == "c.txt" and c["change"] == "added" for c in diff["changes"]), diff


# --- records, repository, health ---------------------------------------------------------------
def test_verify_results_equal_the_records(world: Api) -> None:
    cli = _cli_json(world, "records", "--kind", "verify")["records"]
    mine = world.client("viewer").get("/api/v1/verify").json()["results"]
    assert [(r["id"], r["ok"], r["source"], r["summary"]) for r in mine] == [
        (r["id"], r["ok"], r["source"], r["summary"]) for r in cli
    ]
    assert world.client("viewer").get("/api/v1/verify", params={"source": "empty"}).json()["results"] == []


def test_drills_with_their_rto_trend(world: Api) -> None:
    cli = _cli_json(world, "records", "--kind", "drill")["records"]
    body = world.client("viewer").get("/api/v1/drills").json()
    assert [d["id"] for d in body["drills"]] == [r["id"] for r in cli] and len(cli) == 1
    drill, record = body["drills"][0], cli[0]
    assert drill["status"] == record["summary"]["status"] == "passed"
    assert drill["rto_seconds"] == record["summary"]["rto_seconds"]
    assert drill["rto_objective_seconds"] == 3600
    assert body["trend"] == [
        {
            "source": "files",
            "rto_objective_seconds": 3600,
            "points": [{"time": drill["time"], "rto_seconds": drill["rto_seconds"], "ok": True}],
        }
    ]


def test_repository_stats_and_growth(world: Api) -> None:
    snapshots = _cli_json(world, "snapshots")
    body = world.client("viewer").get("/api/v1/repository").json()
    health = _cli_json(world, "health")["repository"]
    assert body["snapshots"] == len(snapshots) and body["unreadable"] == 0
    assert body["location"] == health["location"] and body["data_bytes"] and body["packs"]
    assert [s["source"] for s in body["sources"]] == ["files"]
    assert body["sources"][0]["snapshots"] == len(snapshots)
    stored = sum(int(s["summary"]["bytes_stored"]) for s in snapshots)
    assert sum(d["bytes_stored"] for d in body["growth"]) == body["sources"][0]["bytes_stored"] == stored
    assert sum(d["snapshots"] for d in body["growth"]) == len(snapshots)
    assert body["sources"][0]["bytes_total"] == snapshots[-1]["summary"]["bytes_total"]


def test_health_is_the_document_of_health_json_and_nagios_its_line(world: Api) -> None:
    cli = _cli_json(world, "health")
    client = world.client("viewer")
    mine = client.get("/api/v1/health").json()
    assert set(mine) == set(cli)
    assert (mine["state"], mine["exit_code"]) == (cli["state"], cli["exit_code"]) == ("CRITICAL", 2)
    for key in ("location", "reachable", "state", "locks", "stale_locks"):
        assert mine["repository"][key] == cli["repository"][key], key
    assert 0 < mine["repository"]["packs"] <= cli["repository"]["packs"]  # the report may be up to 30 s old
    pairs = [[(s["source"], c["check"], c["state"]) for c in s["checks"]] for s in mine["sources"]]
    assert pairs == [[(s["source"], c["check"], c["state"]) for c in s["checks"]] for s in cli["sources"]]
    nagios = client.get("/api/v1/health/nagios")
    assert nagios.status_code == 200 and nagios.headers["content-type"].startswith("text/plain")
    line = run_cli("-c", str(world.config), "health", "--nagios", env=world.env).stdout
    assert nagios.text.startswith("LIFEBOAT CRITICAL - ") and line.startswith("LIFEBOAT CRITICAL - ")
    assert nagios.text.count("\n") == 1 and "'empty_rpo_age_seconds'=U" in nagios.text


# --- who may read --------------------------------------------------------------------------------
def test_every_read_needs_a_token_and_a_viewer_may_read(world: Api) -> None:
    anonymous, wrong, viewer = world.client(), world.client(token="lb_" + "0" * 43), world.client("viewer")
    for path in (*READ_PATHS, "/api/v1/audit"):
        for client in (anonymous, wrong):
            response = client.get(path)
            _problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer"), path
    for path in READ_PATHS:
        assert viewer.get(path).status_code == 200, path


def test_the_audit_log_needs_an_admin(world: Api) -> None:
    _problem(world.client("viewer").get("/api/v1/audit"), 403)
    _problem(world.client("operator").get("/api/v1/audit"), 403)
    admin = world.client("admin")
    entries = admin.get("/api/v1/audit").json()["entries"]
    cli = _cli_json(world, "audit", "show", "--limit", "1000")
    assert entries and [e["seq"] for e in entries] == [e["seq"] for e in cli][: len(entries)]  # 'audit show' adds one
    assert entries == cli[: len(entries)]
    assert [e["action"] for e in entries[:3]] == ["init", "backup", "backup"]
    assert len(admin.get("/api/v1/audit", params={"limit": 2}).json()["entries"]) == 2
    since = admin.get("/api/v1/audit", params={"since": "2999-01-01T00:00:00Z"}).json()["entries"]
    assert since == []
    assert admin.get("/api/v1/audit", params={"since": "yesterday"}).status_code == 422
