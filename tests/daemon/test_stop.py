"""Stopping the daemon in the middle of a backup: SIGTERM cancels it at a safe point within
the deadline and records it "cancelled"; kill -9 leaves a run the next start records
"interrupted". Either way the repository stays consistent and the next run works."""

from __future__ import annotations

import signal
import time

from tests.daemon.conftest import World


# A producer that streams for ever (64 KiB every 50 ms), or — once the marker exists — says one line.
def slow_source(world: World, timing: str) -> str:
    marker = world.root / "marker"
    script = f"if [ -e {marker} ]; then echo quick; else while true; do head -c 65536 /dev/zero; sleep 0.05; done; fi"
    return f"""  stream:
    type: command
    command: [sh, -c, "{script}"]
    schedule:
      backup: {timing}
"""


def test_sigterm_during_a_backup_cancels_it_within_the_deadline(world: World) -> None:
    world.write_config(slow_source(world, "{every: 1h}"), daemon="  shutdown_deadline: 15s")
    served = world.serve()
    served.wait_logged("job event", job="backup:stream")  # the backup is under way
    served.wait_for(lambda: world.runs("backup:stream"), "the run in the catalog")
    asked = time.monotonic()
    served.signal(signal.SIGTERM)
    assert served.wait_exit(timeout=60) == 0
    assert time.monotonic() - asked < 15
    run = world.runs("backup:stream")[0]
    assert (run.status, run.exit_code) == ("cancelled", 130)
    stopping = served.logged("daemon stopping")[0]
    assert stopping["running"] == ["backup:stream"] and stopping["signal"] == "SIGTERM"
    assert served.logged("run finished", job="backup:stream")[0]["status"] == "cancelled"
    check = world.cli("check")
    assert check.code == 0, check
    assert world.cli("snapshots", "--json").stdout.strip() in ("[]", "")


def test_kill_9_during_a_backup_is_recorded_interrupted_and_the_next_run_works(world: World) -> None:
    world.write_config(slow_source(world, "{every: 2s}"))
    served = world.serve()
    served.wait_logged("job event", job="backup:stream")
    served.wait_for(lambda: world.runs("backup:stream"), "the run in the catalog")
    served.signal(signal.SIGKILL)
    served.wait_exit()
    assert world.runs("backup:stream")[0].status == "running"  # what a killed daemon leaves

    (world.root / "marker").touch()  # from now on the producer finishes at once
    again = world.serve()
    interrupted = again.wait_logged("run interrupted", job="backup:stream")[0]
    first = world.runs("backup:stream")[0]
    assert interrupted["run"] == first.id
    assert first.status == "interrupted" and first.finished is not None
    again.wait_logged("run finished", job="backup:stream", status="succeeded")
    again.signal(signal.SIGTERM)
    assert again.wait_exit() == 0
    check = world.cli("check")
    assert check.code == 0, check
    snapshots = world.cli("snapshots", "--json")
    assert '"source": "stream"' in snapshots.stdout or '"source":"stream"' in snapshots.stdout, snapshots
