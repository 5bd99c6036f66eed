"""Jobs run through the API while they run: a real ``lifeboat serve`` over a real repository, a
``command`` source that streams until the test opens its gate (so "running" is a state the
test can see, never a race), real HTTP clients. A triggered backup runs, is followed live as
server-sent events and ends; a second trigger meanwhile is refused 409; a cancelled backup is
recorded cancelled and the repository still checks; a run waiting for the one slot is shown
waiting, followed, and cancelled before it starts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, prepare, serve
from tests.daemon.conftest import WAIT


def stream_source(root: Path) -> str:
    """A producer that writes 64 KiB every 50 ms until the file ``gate`` exists, then ends."""
    gate = root / "gate"
    script = f"while [ ! -e {gate} ]; do head -c 65536 /dev/urandom; sleep 0.05; done; echo done"
    return f"""  stream:
    type: command
    command: [sh, -c, "{script}"]
  limited:
    type: command
    command: [sh, -c, "{script}"]
    schedule:
      backup: {{cron: "0 3 1 1 *", timeout: 6s}}
"""


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("live")
    env = prepare(root, daemon="  max_parallel_jobs: 1")  # a second job waits while the stream runs
    config = root / "lifeboat.yaml"
    config.write_text(config.read_text() + stream_source(root))  # "sources:" is the file's last section
    made = serve(root, env)
    yield made
    made.stop()


@pytest.fixture
def gate(live_api: Api) -> Iterator[Path]:
    """The producer's gate, closed for the test (opened at its end, whatever happens)."""
    path = live_api.root / "gate"
    path.unlink(missing_ok=True)
    yield path
    path.touch()
    live_api.served.wait_for(lambda: not _running(live_api), "no run of backup:stream left")


def _running(api: Api) -> list[Any]:
    answer = api.client("viewer").get("/api/v1/runs", params={"job": "backup:stream", "status": "running"})
    return list(answer.json()["runs"])


def wait_until(predicate: Any, what: str, timeout: float = WAIT) -> Any:
    """Poll ``predicate`` over HTTP (the state is the daemon's) until it is true; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def run_status(api: Api, run_id: str) -> str:
    response = api.client("viewer").get(f"/api/v1/runs/{run_id}")
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


class SseReader:
    """Reads a run's server-sent log on a thread of its own, each event as it comes."""

    def __init__(self, api: Api, run_id: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.changed = threading.Condition()
        self.done = False
        self.status = 0
        self._client = httpx.Client(
            base_url=api.base_url,
            headers={"Authorization": f"Bearer {api.tokens['viewer']}"},
            timeout=httpx.Timeout(WAIT, read=WAIT * 2),
        )
        api.clients.append(self._client)
        self._thread = threading.Thread(target=self._read, args=(run_id,), daemon=True)
        self._thread.start()

    def _read(self, run_id: str) -> None:
        try:
            with self._client.stream("GET", f"/api/v1/runs/{run_id}/log") as response:
                self.status = response.status_code
                name, data = "message", ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        name = line.partition(":")[2].strip()
                    elif line.startswith("data:"):
                        data += line.partition(":")[2].strip()
                    elif line == "" and data:
                        with self.changed:
                            self.events.append((name, json.loads(data)))
                            self.changed.notify_all()
                        name, data = "message", ""
        finally:
            with self.changed:
                self.done = True
                self.changed.notify_all()

    def wait_for(self, predicate: Any, what: str) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self.events) or self.done, WAIT):
                raise AssertionError(f"timed out waiting for {what}: {self.events[-5:]}")
            assert predicate(self.events), f"the stream ended before {what}: {self.events[-5:]}"

    def named(self, name: str) -> list[dict[str, Any]]:
        with self.changed:
            return [data for event, data in self.events if event == name]

    def join(self) -> None:
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the stream did not end"


def test_a_triggered_backup_runs_streams_its_log_live_and_ends(live_api: Api, gate: Path) -> None:
    operator = live_api.client("operator")
    answer = operator.post("/api/v1/jobs/backup:stream/run")
    assert answer.status_code == 202, answer.text
    body = answer.json()
    run_id = body["run_id"]
    assert body["job"] == "backup:stream" and body["run"] == f"/api/v1/runs/{run_id}"
    wait_until(lambda: run_status(live_api, run_id) == "running", "the run running")

    reader = SseReader(live_api, run_id)
    reader.wait_for(lambda events: any(e == "log" for e, _ in events), "a first log line")
    assert reader.status == 200
    first = reader.named("run")[0]
    assert (first["id"], first["status"], first["trigger"]) == (run_id, "running", "api")
    before = len(reader.named("log"))

    # A second trigger while it runs: refused, nothing queued behind it.
    again = operator.post("/api/v1/jobs/backup:stream/run")
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    problem = again.json()
    assert problem["status"] == 409 and problem["exit_code"] == 11 and "already running" in problem["detail"]
    assert problem["hint"]

    gate.touch()  # the producer ends: the backup commits and the run ends
    reader.wait_for(lambda events: any(e == "end" for e, _ in events), "the end event")
    reader.join()
    end = reader.named("end")[0]
    assert (end["status"], end["exit_code"], end["error"]) == ("succeeded", 0, None)
    lines = reader.named("log")
    assert len(lines) > before  # lines that came after the client connected: streamed live
    assert any("backup: " in line["message"] and "done in" in line["message"] for line in lines[before:])
    seqs = [line["seq"] for line in lines]
    assert seqs == sorted(set(seqs)), "each line once, in order"

    run = live_api.client("viewer").get(f"/api/v1/runs/{run_id}").json()
    assert (run["status"], run["trigger"], run["job"], run["kind"]) == ("succeeded", "api", "backup:stream", "backup")
    assert run["summary"] and run["bytes_read"] and run["duration_seconds"] is not None
    snapshots = json.loads(live_api.cli("snapshots", "--json", "--source", "stream").stdout)
    assert [snapshot["id"] for snapshot in snapshots if snapshot.get("id")], snapshots

    # Its log again, now that it ended: the stored lines and the end, at once.
    replay = SseReader(live_api, run_id)
    replay.join()
    assert [line["seq"] for line in replay.named("log")] == seqs
    assert replay.named("end") == [end | {"finished": replay.named("end")[0]["finished"]}]
    assert live_api.served.logged("job event", run=run_id)


def test_a_cancelled_backup_is_recorded_cancelled_and_the_repository_checks(live_api: Api, gate: Path) -> None:
    operator = live_api.client("operator")
    run_id = operator.post("/api/v1/jobs/backup:stream/run").json()["run_id"]
    wait_until(lambda: run_status(live_api, run_id) == "running", "the run running")
    reader = SseReader(live_api, run_id)
    reader.wait_for(lambda events: any(e == "log" for e, _ in events), "a first log line")

    answer = operator.post(f"/api/v1/runs/{run_id}/cancel")
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"run_id": run_id, "status": "cancelling"}
    reader.wait_for(lambda events: any(e == "end" for e, _ in events), "the end event")
    end = reader.named("end")[0]
    assert (end["status"], end["exit_code"]) == ("cancelled", 130)
    assert end["error"] == "cancelled (by API token operator-token)"
    run = live_api.client("viewer").get(f"/api/v1/runs/{run_id}").json()
    assert (run["status"], run["exit_code"]) == ("cancelled", 130)

    again = operator.post(f"/api/v1/runs/{run_id}/cancel")  # it ended
    assert again.status_code == 409 and "already ended" in again.json()["detail"], again.text
    check = live_api.cli("check")
    assert check.code == 0, check
    cancels = [e for e in live_api.audit_entries() if e["action"] == "cancel"]
    assert cancels and cancels[-1]["actor"]["token"] == "operator-token"
    assert cancels[-1]["arguments"]["run"] == run_id
    finished = [e for e in live_api.audit_entries() if e["arguments"].get("run") == run_id and e["action"] == "backup"]
    assert {entry["actor"]["token"] for entry in finished} == {"operator-token"}  # the call and the run


def test_a_client_that_stops_reading_and_goes_away_does_not_hold_the_run(live_api: Api, gate: Path) -> None:
    operator = live_api.client("operator")
    run_id = operator.post("/api/v1/jobs/backup:stream/run").json()["run_id"]
    wait_until(lambda: run_status(live_api, run_id) == "running", "the run running")
    client = live_api.client("viewer")
    with client.stream("GET", f"/api/v1/runs/{run_id}/log") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        next(response.iter_lines())  # connected, then gone without reading on
    client.close()
    gate.touch()
    wait_until(lambda: run_status(live_api, run_id) == "succeeded", "the run to succeed")
    # A new reader of the ended run gets the stored log and the end at once.
    replay = SseReader(live_api, run_id)
    replay.join()
    assert replay.named("end")[0]["status"] == "succeeded"


def test_a_run_waiting_for_a_slot_is_shown_followed_and_cancelled(live_api: Api, gate: Path) -> None:
    operator, viewer = live_api.client("operator"), live_api.client("viewer")
    stream = operator.post("/api/v1/jobs/backup:stream/run").json()["run_id"]
    wait_until(lambda: run_status(live_api, stream) == "running", "the stream running")

    waiting = operator.post("/api/v1/jobs/backup:files/run")
    assert waiting.status_code == 202, waiting.text
    first = waiting.json()["run_id"]
    run = viewer.get(f"/api/v1/runs/{first}").json()
    assert (run["status"], run["started"], run["trigger"]) == ("waiting", None, "api")
    assert viewer.get("/api/v1/runs", params={"status": "waiting"}).json()["runs"][0]["id"] == first
    job = {j["name"]: j for j in viewer.get("/api/v1/jobs").json()["jobs"]}["backup:files"]
    assert job["current_run"]["id"] == first and job["current_run"]["status"] == "waiting" and not job["running"]
    busy = operator.post("/api/v1/jobs/backup:files/run")
    assert busy.status_code == 409 and "waiting for a slot" in busy.json()["detail"], busy.text

    reader = SseReader(live_api, first)
    reader.wait_for(lambda events: any(e == "run" for e, _ in events), "the run event")
    cancelled = operator.post(f"/api/v1/runs/{first}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled", cancelled.text
    reader.wait_for(lambda events: any(e == "end" for e, _ in events), "the end event")
    reader.join()
    assert reader.named("end")[0]["status"] == "cancelled"
    assert run_status(live_api, first) == "cancelled"

    second = operator.post("/api/v1/jobs/backup:files/run").json()["run_id"]
    follower = SseReader(live_api, second)
    follower.wait_for(lambda events: any(e == "run" for e, _ in events), "the run event")
    assert follower.named("run")[0]["status"] == "waiting"
    gate.touch()  # the stream ends; the waiting backup takes the slot
    follower.wait_for(lambda events: any(e == "end" for e, _ in events), "the end event")
    follower.join()
    assert follower.named("end")[0]["status"] == "succeeded"
    assert follower.named("log"), "its lines, streamed once it started"
    assert run_status(live_api, stream) == "succeeded"


def test_another_hosts_daemon_on_the_same_catalog_lists_and_follows_the_run(
    live_api: Api, gate: Path, tmp_path: Path
) -> None:
    other_root = tmp_path / "other"
    catalog = live_api.state / "catalog.sqlite"
    other = serve(other_root, prepare(other_root, daemon=f"  catalog: {catalog}\n  host: other-host"))
    try:
        run_id = live_api.client("operator").post("/api/v1/jobs/backup:stream/run").json()["run_id"]
        wait_until(lambda: run_status(live_api, run_id) == "running", "the run running")
        seen = other.client("viewer").get("/api/v1/runs", params={"job": "backup:stream", "status": "running"})
        assert [run["id"] for run in seen.json()["runs"]] == [run_id]
        here = other.client("viewer").get("/api/v1/runs", params={"host": "other-host"}).json()["runs"]
        assert run_id not in {run["id"] for run in here}

        refused = other.client("operator").post(f"/api/v1/runs/{run_id}/cancel")
        assert refused.status_code == 409 and "runs on host" in refused.json()["detail"], refused.text

        reader = SseReader(other, run_id)  # followed through the shared catalog
        reader.wait_for(lambda events: any(e == "log" for e, _ in events), "a first log line")
        gate.touch()
        reader.wait_for(lambda events: any(e == "end" for e, _ in events), "the end event")
        reader.join()
        assert reader.named("end")[0]["status"] == "succeeded"
        assert any("done in" in line["message"] for line in reader.named("log"))
    finally:
        other.stop()


def test_a_triggered_run_of_a_scheduled_job_keeps_its_timeout(live_api: Api, gate: Path) -> None:
    answer = live_api.client("operator").post("/api/v1/jobs/backup:limited/run")
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    wait_until(lambda: run_status(live_api, run_id) == "running", "the run running")
    job = {j["name"]: j for j in live_api.client("viewer").get("/api/v1/jobs").json()["jobs"]}["backup:limited"]
    assert job["timeout_seconds"] == 6 and job["running"] is True
    assert (job["current_run"]["id"], job["current_run"]["status"], job["current_run"]["trigger"]) == (
        run_id, "running", "api",
    )  # fmt: skip
    assert job["current_run"]["started"] is not None
    run = wait_until(
        lambda: (
            (found := live_api.client("viewer").get(f"/api/v1/runs/{run_id}").json())["status"]
            not in ("waiting", "running")
            and found
        ),
        "the run to end",
    )
    assert (run["status"], run["exit_code"], run["error"]) == ("timed-out", 130, "timed out after 6 s"), run
    assert run["trigger"] == "api"
