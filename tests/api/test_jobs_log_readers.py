"""The run log's readers, seen from inside: the app of ``lifeboat serve`` (create_app, the jobs
routes, the live hub) served by the daemon's own HttpServer on a real socket and read by real
HTTP clients, over a stand-in for the daemon whose live hub the test publishes to — so the test
can count subscribers and drive a run faster than any job logs. A client that disconnects is
unsubscribed; a client that stops reading never holds the publisher: it loses its oldest lines
and is told how many."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from lifeboat.app.api.app import create_app
from lifeboat.app.api.server import HttpServer, bind
from lifeboat.app.api.tokens import Role, TokenStore, create_token, tokens_path
from lifeboat.app.daemon.actions import RunNotFound
from lifeboat.app.daemon.catalog import JobRun
from lifeboat.app.daemon.live import QUEUE_SIZE, LiveEvent, LiveRuns, RunEnded

WAIT = 30.0
AT = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@dataclass
class StandIn:
    """What create_app and the jobs routes read of the daemon; runs are made up by the test."""

    state: Path
    live: LiveRuns = field(default_factory=LiveRuns)
    host: str = "here"
    runs_by_id: dict[str, JobRun] = field(default_factory=dict)

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        return True, {}

    def metrics(self) -> bytes:
        return b""

    def api_tokens(self) -> TokenStore:
        return TokenStore(tokens_path(self.state))

    def audit_api_call(self, token: str, action: str, arguments: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        return

    def api_error(self, message: str, error: Exception) -> None:
        return

    def audit_ready(self) -> None:
        return

    def find_run(self, run_id: str) -> JobRun:
        if run_id not in self.runs_by_id:
            raise RunNotFound(f"no run {run_id!r}")
        return self.runs_by_id[run_id]

    def run_events(self, run_id: str) -> list[Any]:
        return []

    def add_running(self, run_id: str) -> None:
        self.runs_by_id[run_id] = JobRun(
            id=run_id, host=self.host, job="backup:db", kind="backup", target="db", trigger="api", attempt=1,
            started=AT, finished=None, status="running", exit_code=None, error=None, bytes_read=None,
            bytes_added=None,
        )  # fmt: skip
        self.live.started(run_id)


@dataclass
class Served:
    daemon: StandIn
    base_url: str
    token: str

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"}, **options)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    daemon = StandIn(tmp_path)
    token, _ = create_token(tokens_path(tmp_path), "reader", Role.VIEWER)
    sock = bind("127.0.0.1", 0)
    server = HttpServer(create_app(daemon), sock)  # type: ignore[arg-type]
    server.start()
    host, port = server.address
    try:
        yield Served(daemon, f"http://{host}:{port}", token)
    finally:
        server.stop()


def wait_until(predicate: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_client_that_disconnects_is_unsubscribed(served: Served) -> None:
    live = served.daemon.live
    served.daemon.add_running("r1")
    with served.client(timeout=WAIT) as client, client.stream("GET", "/api/v1/runs/r1/log") as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines) == "event: run"
        wait_until(lambda: live.subscriber_count("r1") == 1, "the reader subscribed")
        live.publish(LiveEvent("r1", 1, AT, "info", "backup: reading"))
        assert any("backup: reading" in line for line in lines)
    wait_until(lambda: live.subscriber_count("r1") == 0, "the reader gone")  # while the run goes on
    assert live.active("r1")


def test_a_client_that_stops_reading_never_holds_the_run_and_is_told_what_it_lost(served: Served) -> None:
    live = served.daemon.live
    served.daemon.add_running("r2")
    total = QUEUE_SIZE * 50
    message = "x" * 200  # 50,000 lines of ~300 bytes: far more than the socket buffers hold
    with served.client(timeout=WAIT) as client, client.stream("GET", "/api/v1/runs/r2/log") as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines) == "event: run"
        wait_until(lambda: live.subscriber_count("r2") == 1, "the reader subscribed")
        started = time.monotonic()
        for seq in range(1, total + 1):  # the reader reads nothing meanwhile
            live.publish(LiveEvent("r2", seq, AT, "info", f"{seq} {message}"))
        live.ended(RunEnded("r2", "succeeded", 0, None, AT))
        publishing = time.monotonic() - started
        events: list[tuple[str, dict[str, Any]]] = []
        name = ""
        for line in lines:
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.partition(":")[2])))
                if name == "end":
                    break
    assert publishing < 20, f"publishing took {publishing:.1f} s: the publisher waited for the reader"
    dropped = sum(data["count"] for name, data in events if name == "dropped")
    logged = [data["seq"] for name, data in events if name == "log"]
    assert dropped > 0 and dropped + len(logged) == total
    assert logged == sorted(logged) and logged[-1] == total  # the newest kept, in order
    end = {"status": "succeeded", "exit_code": 0, "error": None, "finished": "2026-11-30T10:00:00Z"}
    assert events[-1] == ("end", end)
    wait_until(lambda: live.subscriber_count() == 0, "no reader left")


def test_an_unknown_run_is_404_and_subscribes_nobody(served: Served) -> None:
    with served.client(timeout=WAIT) as client:
        answer = client.get("/api/v1/runs/nope/log")
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("application/problem+json")
    assert served.daemon.live.subscriber_count() == 0


def test_the_end_of_a_followed_run_ends_the_stream(served: Served) -> None:
    served.daemon.add_running("r3")
    with served.client(timeout=WAIT) as client, client.stream("GET", "/api/v1/runs/r3/log") as response:
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"].startswith("text/event-stream")
        wait_until(lambda: served.daemon.live.subscriber_count("r3") == 1, "the reader subscribed")
        served.daemon.live.ended(RunEnded("r3", "failed", 16, "the source failed", AT))
        text = "".join(response.iter_text())  # returns: the server closed the stream
    assert text.rstrip().splitlines()[-1].startswith("data:") and "event: end" in text
    assert '"exit_code": 16' in text and '"error": "the source failed"' in text


def test_a_run_the_catalog_calls_running_but_that_runs_nowhere_here_ends_its_stream(served: Served) -> None:
    """Its end was never written (a daemon killed before): the log is what the catalog holds,
    then the stream ends — it does not wait for an end that will never come."""
    daemon = served.daemon
    daemon.runs_by_id["stale"] = JobRun(
        id="stale", host=daemon.host, job="backup:db", kind="backup", target="db", trigger="schedule", attempt=1,
        started=AT, finished=None, status="running", exit_code=None, error=None, bytes_read=None, bytes_added=None,
    )  # fmt: skip
    started = time.monotonic()
    with served.client(timeout=WAIT) as client, client.stream("GET", "/api/v1/runs/stale/log") as response:
        text = "".join(response.iter_text())  # returns: the server closed the stream
    assert time.monotonic() - started < WAIT / 2
    assert "event: end" in text and '"status": "running"' in text
    wait_until(lambda: daemon.live.subscriber_count() == 0, "no reader left")
