"""Stopping the daemon in the middle of a backup: SIGTERM cancels it at a safe point within
the deadline and records it "cancelled"; kill -9 leaves a run the next start records
"interrupted". Either way the repository stays consistent and the next run works."""

from __future__ import annotations

import ctypes
import os
import signal
import time

import pytest

from tests.daemon.conftest import World


# A producer that streams for ever (64 KiB every 50 ms), or — once the marker exists — says one line.
# It stops when nobody reads it any more (a write fails): the daemon killed with -9 leaves it behind.
def slow_source(world: World, timing: str) -> str:
    marker = world.root / "marker"
    script = f"if [ -e {marker} ]; then echo quick; else while head -c 65536 /dev/zero; do sleep 0.05; done; fi"
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


def stalled_source() -> str:
    """A producer that writes nothing for 40 s: no safe point comes while it waits."""
    return """  stalled:
    type: command
    command: [sh, -c, "exec sleep 40"]
    schedule:
      backup: {every: 1h}
"""


def test_a_run_that_reaches_no_safe_point_is_recorded_cancelled_at_the_deadline(world: World) -> None:
    world.write_config(stalled_source(), daemon="  shutdown_deadline: 2s")
    served = world.serve()
    served.wait_logged("job event", job="backup:stalled")
    asked = time.monotonic()
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0
    assert 2 <= time.monotonic() - asked < 20
    run = world.runs("backup:stalled")[0]
    assert run.status == "cancelled"
    assert run.error == "did not reach a safe point within shutdown_deadline (2 s)"
    assert served.logged("run abandoned", job="backup:stalled")


@pytest.mark.parametrize("to", ["process", "another thread"])
def test_a_second_sigterm_exits_at_once(world: World, to: str) -> None:
    # The kernel may give a signal sent to the process to any of its threads, and the handler then
    # runs only when the main thread runs Python: sent once to a thread that is not the main one.
    world.write_config(stalled_source(), daemon="  shutdown_deadline: 10min")
    served = world.serve()
    served.wait_logged("job event", job="backup:stalled")
    served.signal(signal.SIGTERM)
    served.wait_logged("daemon stopping")
    pid = served.process.pid
    asked = time.monotonic()
    if to == "process":
        served.signal(signal.SIGTERM)
    else:
        other = next(int(tid) for tid in sorted(os.listdir(f"/proc/{pid}/task")) if int(tid) != pid)
        assert ctypes.CDLL(None, use_errno=True).tgkill(pid, other, signal.SIGTERM) == 0
    assert served.wait_exit() == 130
    assert time.monotonic() - asked < 10  # the stalled producer would hold it 40 s
    assert served.logged("forced stop")
    assert world.runs("backup:stalled")[0].status == "running"  # the next start records it interrupted


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def test_a_stop_at_the_deadline_leaves_no_program_behind(world: World) -> None:
    """The producer a run still waited on is stopped with the daemon, not orphaned for its 40 s."""
    world.write_config(stalled_source(), daemon="  shutdown_deadline: 2s")
    served = world.serve()
    served.wait_logged("job event", job="backup:stalled")
    producers = served.wait_for(lambda: _children_of(served.process.pid), "the producer started")
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0

    def gone(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            return True

    served.wait_for(lambda: all(gone(p) for p in producers), "the producer stopped", timeout=10)


SYS_SELECT, SYS_PSELECT6, SYS_TGKILL = 23, 270, 234  # x86-64


def _asleep(pid: int) -> bool:
    """Whether the daemon's main thread is blocked in select (the loop's sleep)."""
    with open(f"/proc/{pid}/task/{pid}/syscall") as found:
        first = found.read().split()[0]
    return first.isdigit() and int(first) in (SYS_SELECT, SYS_PSELECT6)


def _signal_another_thread(pid: int, signum: int) -> None:
    """Send ``signum`` to a thread of ``pid`` other than its main one (tgkill(2)): where the
    kernel may deliver a signal sent to a process with several threads."""
    import ctypes

    others = sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid)
    assert others, "the daemon runs threads besides its main one"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(SYS_TGKILL, pid, others[0], signum) == 0, os.strerror(ctypes.get_errno())


def test_sigterm_taken_by_another_thread_stops_an_idle_daemon_at_once(world: World) -> None:
    # Idle, the main thread sleeps until the next due time or the heartbeat (30 s); a signal
    # another thread took was handled only when that sleep ended.
    world.write_config(slow_source(world, '"0 3 1 1 *"'))  # next run on 1 January
    served = world.serve()
    pid = served.process.pid
    served.wait_for(lambda: _asleep(pid), "the scheduler loop asleep")
    asked = time.monotonic()
    _signal_another_thread(pid, signal.SIGTERM)
    assert served.wait_exit(timeout=60) == 0
    assert time.monotonic() - asked < 10
    assert served.logged("daemon stopping")[0]["signal"] == "SIGTERM"
