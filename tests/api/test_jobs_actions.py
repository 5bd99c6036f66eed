"""Jobs and actions through the API on a real ``lifeboat serve`` over a real repository (the
``api`` fixture: source ``files`` with a backup and a verify scheduled, one token per role):
the job list, a triggered backup that makes a snapshot, runs and their filters, a drill of a
source that has no drill schedule, roles, unknown jobs and runs as problem JSON, and each
action in the audit log with the token's name."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.daemon.conftest import WAIT


def wait_run(api: Api, run_id: str, *statuses: str) -> dict[str, Any]:
    """Poll the run over HTTP until its status is one of ``statuses``; the run."""
    deadline = time.monotonic() + WAIT * 3
    while True:
        answer = api.client("viewer").get(f"/api/v1/runs/{run_id}")
        if answer.status_code == 200 and answer.json()["status"] in statuses:
            return dict(answer.json())
        assert time.monotonic() < deadline, f"run {run_id} never reached {statuses}: {answer.text}"
        time.sleep(0.2)


def assert_problem(answer: Any, status: int, exit_code: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = dict(answer.json())
    assert body["status"] == status and body["exit_code"] == exit_code and body["detail"] and body["hint"], body
    return body


def test_the_job_list_shows_the_scheduled_jobs(api: Api) -> None:
    answer = api.client("viewer").get("/api/v1/jobs")
    assert answer.status_code == 200, answer.text
    jobs = {job["name"]: job for job in answer.json()["jobs"]}
    assert set(jobs) == {"backup:files", "verify:files"}
    backup = jobs["backup:files"]
    assert (backup["kind"], backup["target"], backup["schedule"]) == ("backup", "files", "cron 0 3 * * *")
    assert backup["next_run"] and backup["role_to_run"] == "operator" and backup["priority"] == 50
    assert backup["running"] is False and backup["current_run"] is None


def test_a_triggered_backup_makes_a_snapshot_and_is_recorded_with_trigger_api(api: Api) -> None:
    before = json.loads(api.cli("snapshots", "--json").stdout)
    answer = api.client("operator").post("/api/v1/jobs/backup:files/run")
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    run = wait_run(api, run_id, "succeeded", "failed")
    assert run["status"] == "succeeded", run
    assert (run["trigger"], run["job"], run["exit_code"], run["attempt"]) == ("api", "backup:files", 0, 1)
    assert run["summary"]["snapshot"], run["summary"]
    after = json.loads(api.cli("snapshots", "--json").stdout)
    assert len(after) == len(before) + 1
    assert run["summary"]["snapshot"]["id"] in {snapshot["id"] for snapshot in after}

    viewer = api.client("viewer")
    listed = viewer.get("/api/v1/runs", params={"job": "backup:files", "status": "succeeded"}).json()["runs"]
    assert listed[0]["id"] == run_id and all(r["job"] == "backup:files" for r in listed)
    assert viewer.get("/api/v1/runs", params={"status": "failed"}).json()["runs"] == []
    assert len(viewer.get("/api/v1/runs", params={"limit": 1}).json()["runs"]) == 1
    assert_problem(viewer.get("/api/v1/runs", params={"status": "nonsense"}), 422, 2)
    job = {j["name"]: j for j in viewer.get("/api/v1/jobs").json()["jobs"]}["backup:files"]
    assert job["last_run"]["id"] == run_id and job["last_run"]["status"] == "succeeded"

    entries = [e for e in api.audit_entries() if e["arguments"].get("run") == run_id]
    assert len(entries) == 2, entries  # the call, and the run when it ended
    assert {e["actor"]["token"] for e in entries} == {"operator-token"}
    assert {e["action"] for e in entries} == {"backup"}


def test_a_drill_of_a_source_without_a_drill_schedule_runs(api: Api) -> None:
    answer = api.client("operator").post("/api/v1/drills", json={"source": "files"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["job"] == "drill:files"
    run = wait_run(api, body["run_id"], "succeeded", "failed")
    assert (run["status"], run["kind"], run["trigger"]) == ("succeeded", "drill", "api"), run
    entries = [e for e in api.audit_entries() if e["arguments"].get("run") == body["run_id"]]
    assert {e["actor"]["token"] for e in entries} == {"operator-token"} and len(entries) == 2
    assert_problem(api.client("operator").post("/api/v1/drills", json={"source": "nope"}), 404, 2)
    assert_problem(api.client("operator").post("/api/v1/drills", json={}), 422, 2)


def test_an_admin_runs_a_check_and_a_prune(api: Api) -> None:
    admin = api.client("admin")
    for job in ("check:main", "prune:main"):
        answer = admin.post(f"/api/v1/jobs/{job}/run")
        assert answer.status_code == 202, answer.text
        run = wait_run(api, answer.json()["run_id"], "succeeded", "failed")
        assert run["status"] == "succeeded", run
        assert any(e["actor"]["token"] == "admin-token" and e["arguments"].get("job") == job
                   for e in api.audit_entries())  # fmt: skip


@pytest.mark.parametrize(
    ("role", "job", "status"),
    [
        ("viewer", "backup:files", 403),
        ("viewer", "check:main", 403),
        ("operator", "retention:files", 403),
        ("operator", "prune:main", 403),
        ("operator", "copy:main", 403),
    ],
)
def test_roles(api: Api, role: str, job: str, status: int) -> None:
    runs_before = len(api.client("viewer").get("/api/v1/runs").json()["runs"])
    answer = api.client(role).post(f"/api/v1/jobs/{job}/run")
    body = assert_problem(answer, status, 2)
    assert f"{role}-token" in body["detail"]
    assert len(api.client("viewer").get("/api/v1/runs").json()["runs"]) == runs_before  # nothing ran
    refused = [e for e in api.audit_entries() if e["actor"]["token"] == f"{role}-token"]
    assert refused and refused[-1]["result"]["status"] != "ok", refused[-1:]


def test_a_viewer_may_not_cancel_nor_start_a_drill(api: Api) -> None:
    viewer = api.client("viewer")
    assert_problem(viewer.post("/api/v1/drills", json={"source": "files"}), 403, 2)
    assert_problem(viewer.post("/api/v1/runs/whatever/cancel"), 403, 2)


def test_no_token_is_401(api: Api) -> None:
    answer = api.client().post("/api/v1/jobs/backup:files/run")
    assert_problem(answer, 401, 2)


@pytest.mark.parametrize("job", ["backup:nope", "nonsense", "drill:", "explode:files", "copy:main"])
def test_unknown_jobs_are_404_problem_json(api: Api, job: str) -> None:
    body = assert_problem(api.client("admin").post(f"/api/v1/jobs/{job}/run"), 404, 2)
    assert "no job" in body["detail"]


def test_unknown_runs_are_404_problem_json(api: Api) -> None:
    viewer, operator = api.client("viewer"), api.client("operator")
    assert_problem(viewer.get("/api/v1/runs/no-such-run"), 404, 2)
    assert_problem(viewer.get("/api/v1/runs/a%00b"), 422, 2)
    assert_problem(viewer.get("/api/v1/runs", params={"job": "a\x00b"}), 422, 2)
    assert_problem(viewer.get("/api/v1/runs/no-such-run/log"), 404, 2)
    assert_problem(operator.post("/api/v1/runs/no-such-run/cancel"), 404, 2)


def test_the_endpoints_are_in_the_openapi_schema_with_their_roles(api: Api) -> None:
    from fastapi import FastAPI

    from lifeboat.app.api.auth import route_roles
    from lifeboat.app.api.routes.jobs import router
    from lifeboat.app.api.tokens import Role

    schema = api.client().get("/api/openapi.json").json()
    for path in ("/api/v1/jobs", "/api/v1/runs", "/api/v1/runs/{run_id}", "/api/v1/runs/{run_id}/log",
                 "/api/v1/jobs/{name}/run", "/api/v1/runs/{run_id}/cancel", "/api/v1/drills"):  # fmt: skip
        assert path in schema["paths"], path
    app = FastAPI()
    app.include_router(router)
    roles = route_roles(app)
    assert roles[("GET", "/api/v1/runs/{run_id}/log")] == Role.VIEWER
    assert roles[("POST", "/api/v1/jobs/{name}/run")] == Role.OPERATOR
    assert roles[("POST", "/api/v1/drills")] == Role.OPERATOR


def test_a_restore_plan_writes_nothing_and_needs_an_admin(api: Api) -> None:
    target = api.root / "restored-here"
    asked = {"snapshot": "latest", "target": str(target), "source": "files"}
    answer = api.client("admin").post("/api/v1/restore-plans", json=asked)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["feasible"] is True, body
    snapshot = body["plan"]["snapshot"]
    newest = json.loads(api.cli("snapshots", "--json", "--source", "files").stdout)[-1]["id"]
    assert snapshot == newest
    assert body["command"] == ["lifeboat", "restore", snapshot, "--target", str(target)]
    assert not target.exists()  # nothing written
    assert body["plan"]["writes"], body["plan"]
    assert any(e["action"] == "restore-plan" and e["actor"]["token"] == "admin-token" for e in api.audit_entries())

    assert_problem(api.client("operator").post("/api/v1/restore-plans", json=asked), 403, 2)
    assert_problem(api.client("admin").post("/api/v1/restore-plans", json={**asked, "target": "relative"}), 400, 2)
    missing = api.client("admin").post("/api/v1/restore-plans", json={**asked, "snapshot": "ffffffffff"})
    assert "no snapshot" in assert_problem(missing, 404, 1)["detail"]
