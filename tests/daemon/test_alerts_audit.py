"""What the daemon tells others about its runs: the alerter (a real HTTP receiver standing in
for a webhook) hears a job fail and recover, once each; the audit log gets one entry per run."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.daemon.conftest import World


class Receiver:
    """A webhook endpoint that keeps each JSON body it is posted."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with received.changed:
                    received.bodies.append(json.loads(body))
                    received.changed.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, count: int) -> list[dict[str, Any]]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.bodies) >= count, 60), self.bodies
            return list(self.bodies)


def test_a_failing_then_recovered_job_alerts_once_each_and_every_run_is_audited(world: World) -> None:
    receiver = Receiver()
    data = world.root / "later"
    world.write_config(
        f"""  files:
    type: files
    paths: [{data}]
    schedule:
      backup: {{every: 2s}}
alerts:
  channels:
    hook: {{type: webhook, url: "{receiver.url}"}}
"""
    )
    try:
        served = world.serve()
        served.wait_logged("run finished", count=2, job="backup:files", status="failed")
        failure = receiver.wait(1)[0]
        assert (failure["event"], failure["key"], failure["source"]) == ("failure", "job:backup:files", "files")
        assert "exit code 16" in failure["detail"]
        assert failure["host"] == socket.gethostname()  # several hosts may share a channel
        data.mkdir()
        (data / "a.txt").write_text("now it exists\n")
        served.wait_logged("run finished", job="backup:files", status="succeeded")
        bodies = receiver.wait(2)
        assert [(b["event"], b["key"]) for b in bodies] == [
            ("failure", "job:backup:files"),
            ("recovery", "job:backup:files"),
        ]
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    finally:
        receiver.server.shutdown()
    assert len(receiver.bodies) == 2  # the second failure said nothing new

    entries = [json.loads(line) for line in (world.state / "audit.jsonl").read_text().splitlines()]
    runs = [e for e in entries if e["arguments"].get("job") == "backup:files"]
    finished = [r for r in served.logged("run finished") if r["job"] == "backup:files"]
    assert len(runs) == len(finished)
    assert runs[0]["action"] == "backup" and runs[0]["arguments"]["argv"][:3] == ["backup", "--source", "files"]
    assert runs[0]["result"]["exit_code"] == 16 and runs[-1]["result"]["status"] == "ok"
    verified = world.cli("audit", "verify")
    assert verified.code == 0, verified


def test_the_daemon_anchors_the_audit_log_in_the_jobs_repository(world: World) -> None:
    """Every N audited runs (here N = 2) the chain's head goes into the repository, as a command
    does; 'audit verify' then checks the log against those anchors."""
    data = world.root / "data"
    data.mkdir()
    (data / "a.txt").write_text("anchored\n")
    world.write_config(
        f"""  files:
    type: files
    paths: [{data}]
    schedule:
      backup: {{every: 1s}}
audit:
  anchor_every: 2
"""
    )
    served = world.serve()
    served.wait_logged("run finished", count=4, job="backup:files", status="succeeded")
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0

    listed = world.cli("--json", "records", "--kind", "audit-anchor")
    assert listed.code == 0, listed
    anchors = json.loads(listed.stdout)
    assert len(anchors) >= 2, anchors  # one per two entries, in the repository
    verified = world.cli("--json", "audit", "verify")
    assert verified.code == 0, verified
    assert served.logged("audit") == []  # no "anchor was not stored" warning


def health_checked_at(served: Any) -> float:
    """When the daemon's last health check ran, from its /metrics (0: not yet)."""
    status, _, body = served.get("/metrics")
    for line in body.splitlines() if status == 200 else ():
        if line.startswith("lifeboat_health_check_timestamp_seconds "):
            return float(line.split()[1])
    return 0.0


def test_a_source_past_its_rpo_is_an_objective_alert_once(world: World) -> None:
    """The daemon's health check holds each source to its rpo: a source with nothing restorable
    is an objective breach, told once (not at every check), with what to do."""
    receiver = Receiver()
    data = world.root / "data"
    data.mkdir()
    world.write_config(
        f"""  files:
    type: files
    paths: [{data}]
    rpo: 1h
alerts:
  channels:
    hook: {{type: webhook, url: "{receiver.url}"}}
""",
        health_check="1s",
    )
    try:
        served = world.serve()
        (breach,) = receiver.wait(1)
        assert (breach["event"], breach["key"], breach["source"]) == ("objective", "objective:files:rpo", "files")
        assert breach["severity"] == "critical"
        assert "nothing restorable" in breach["title"] and "lifeboat backup --source files" in breach["detail"]
        # the health check runs every second: three more checks later, still the one message
        first = time.time()
        served.wait_for(lambda: health_checked_at(served) > first + 3, "three more health checks", timeout=60)
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    finally:
        receiver.server.shutdown()
    assert len(receiver.bodies) == 1


def test_a_drill_over_its_rto_is_an_objective_alert(world: World) -> None:
    receiver = Receiver()
    data = world.root / "data"
    data.mkdir()
    (data / "a.txt").write_text("drilled\n")
    world.write_config(
        f"""  files:
    type: files
    paths: [{data}]
    rto: 0s
    schedule:
      backup: {{every: 1h}}
      drill: {{every: 1h}}
alerts:
  channels:
    hook: {{type: webhook, url: "{receiver.url}", events: [objective]}}
"""
    )
    try:
        served = world.serve()
        served.wait_logged("run finished", job="drill:files")
        (over,) = receiver.wait(1)
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    finally:
        receiver.server.shutdown()
    assert (over["event"], over["key"], over["source"]) == ("objective", "objective:files:rto", "files")
    assert "over its objective 0s" in over["title"]
