"""The live run events (app/daemon/live.py) and the runner's answers to the API: a bounded
queue per subscriber that never blocks the publisher, subscribers gone on close and at the
run's end, a late subscriber told of a recent end; a run cancelled while it runs or waits; why
a run was not queued."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from lifeboat.app.daemon.live import LiveEvent, LiveRuns, RunEnded
from lifeboat.app.daemon.runner import ALREADY_RUNNING, ALREADY_WAITING, STOPPING, RunRequest
from tests.unit.test_daemon_runner import WAIT, Book, Gates, Job, runner

AT = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def line(run: str, seq: int) -> LiveEvent:
    return LiveEvent(run, seq, AT, "info", f"line {seq}")


def test_a_subscriber_gets_the_events_then_the_end_and_is_removed() -> None:
    hub = LiveRuns()
    hub.started("r1")
    with hub.subscribe("r1") as sub:
        assert hub.subscriber_count("r1") == 1
        hub.publish(line("r1", 1))
        hub.publish(line("r2", 1))  # another run's
        hub.ended(RunEnded("r1", "succeeded", 0, None, AT))
        items, dropped = sub.take()
        assert [getattr(item, "seq", "end") for item in items] == [1, "end"]
        assert dropped == 0
        assert hub.subscriber_count() == 0  # the end removed it
        assert not hub.active("r1")


def test_a_slow_subscriber_loses_its_oldest_events_and_never_blocks_the_publisher() -> None:
    hub = LiveRuns(queue_size=10)
    slow = hub.subscribe("r1")
    fast = hub.subscribe("r1")
    started = time.monotonic()
    for seq in range(1, 10_001):
        hub.publish(line("r1", seq))
        if seq % 10 == 0:
            fast.take()
    assert time.monotonic() - started < 5  # nobody waited for the slow one
    hub.ended(RunEnded("r1", "failed", 1, "boom", AT))
    items, dropped = slow.take()
    assert dropped == 9_990
    assert [getattr(item, "seq", "end") for item in items] == [*range(9_991, 10_001), "end"]  # the end is never dropped


def test_closing_removes_the_subscriber_and_a_late_one_hears_of_a_recent_end() -> None:
    hub = LiveRuns(remember=2)
    sub = hub.subscribe("r1")
    sub.close()
    assert hub.subscriber_count() == 0
    hub.publish(line("r1", 1))
    assert sub.take() == ([], 0)
    for run in ("r1", "r2", "r3"):
        hub.ended(RunEnded(run, "succeeded", 0, None, AT))
    late = hub.subscribe("r3")
    assert late.wait(0) and isinstance(late.take()[0][0], RunEnded)
    assert hub.subscriber_count() == 0  # nothing to wait for
    forgotten = hub.subscribe("r1")  # beyond `remember`: waits like any other
    assert not forgotten.wait(0)
    forgotten.close()


def test_wake_is_called_for_each_item_and_a_failing_wake_does_not_reach_the_publisher() -> None:
    hub = LiveRuns()
    calls: list[int] = []
    sub = hub.subscribe("r1", wake=lambda: calls.append(1))
    broken = hub.subscribe("r1", wake=lambda: 1 / 0)  # type: ignore[func-returns-value]
    hub.publish(line("r1", 1))
    hub.ended(RunEnded("r1", "succeeded", 0, None, AT))
    assert len(calls) == 2
    assert len(broken.take()[0]) == 2
    sub.close()


def test_a_waiting_subscriber_wakes_when_an_event_comes() -> None:
    hub = LiveRuns()
    sub = hub.subscribe("r1")
    threading.Timer(0.05, hub.publish, args=(line("r1", 1),)).start()
    assert sub.wait(WAIT)
    sub.close()


def test_offer_says_why_a_run_was_not_queued() -> None:
    book, gates = Book(), Gates()
    run = runner(book, gates, 1)
    backup, check = Job("backup:db", "backup", 60), Job("check:main", "check", 25)
    assert run.offer(RunRequest(backup, run_id="a")) is None
    book.wait(lambda: book.started == ["backup:db"])
    assert run.offer(RunRequest(backup, run_id="b")) == ALREADY_RUNNING
    assert run.offer(RunRequest(check, run_id="c")) is None
    assert run.offer(RunRequest(check, run_id="d")) == ALREADY_WAITING
    assert [request.run_id for request in run.waiting()] == ["c"]
    run.stop()
    assert run.offer(RunRequest(check, run_id="e")) == STOPPING
    gates.gate("backup:db").set()
    assert run.wait_idle(WAIT)


def test_cancel_run_stops_a_running_run_and_records_a_waiting_one_cancelled() -> None:
    book, gates = Book(), Gates()
    run = runner(book, gates, 1)
    assert run.offer(RunRequest(Job("backup:db", "backup", 60), trigger="api", run_id="run-1")) is None
    book.wait(lambda: book.started == ["backup:db"])
    assert run.offer(RunRequest(Job("verify:db", "verify", 20), trigger="api", run_id="w")) is None
    assert run.cancel_run("nope", "by ops") is None
    assert run.cancel_run("w", "by ops") == "waiting"
    assert run.waiting() == []
    book.wait(lambda: len(book.finished) == 1)
    waiting = book.finished[0]
    assert (waiting.request.job.name, waiting.status, waiting.exit_code) == ("verify:db", "cancelled", 130)
    assert waiting.error == "cancelled (by ops)"
    assert run.cancel_run("run-1", "cancelled by ops") == "running"  # Book names runs run-1, run-2…
    book.wait(lambda: len(book.finished) == 2)
    running = book.finished[1]
    assert (running.request.job.name, running.status, running.exit_code) == ("backup:db", "cancelled", 130)
    assert running.error == "cancelled (cancelled by ops)"
    assert run.wait_idle(WAIT)


def test_stop_records_the_waiting_runs_asked_for_through_the_api_as_cancelled() -> None:
    book, gates = Book(), Gates()
    run = runner(book, gates, 1)
    assert run.offer(RunRequest(Job("backup:db", "backup", 60))) is None
    book.wait(lambda: book.started == ["backup:db"])
    assert run.offer(RunRequest(Job("verify:db", "verify", 20), trigger="api", run_id="asked")) is None
    assert run.offer(RunRequest(Job("check:main", "check", 25))) is None  # scheduled: only skipped
    run.stop()
    book.wait(lambda: len(book.finished) == 2)
    dropped = [outcome for outcome in book.finished if outcome.request.run_id == "asked"]
    assert len(dropped) == 1 and dropped[0].status == "cancelled"
    assert dropped[0].error == "cancelled (the daemon is stopping)"
    assert {name for name, _ in book.skipped} == {"verify:db", "check:main"}
    assert run.wait_idle(WAIT)
