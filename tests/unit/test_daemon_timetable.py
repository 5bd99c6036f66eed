"""The daemon's timetable (app/daemon/timetable.py) on a fake clock: each scheduled time handed
out once, one catch-up run after downtime, retries with backoff, a reload that keeps what did
not change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lifeboat.app.daemon.timetable import Timetable
from lifeboat.core.jobtiming import Timing

T0 = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Job:
    name: str
    timing: Timing
    kind: str = "backup"
    target: str = "db"
    priority: int = 50


def never(job: str) -> datetime | None:
    return None


def test_a_cron_job_fires_once_at_each_time_and_sleeps_until_the_next() -> None:
    job = Job("backup:db", Timing(cron="0 2 * * *", zone=UTC))
    table = Timetable([job], host="h", now=T0, last_fire=never)
    assert table.wake_at() == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    assert table.due(T0 + timedelta(hours=1)) == []
    fires = table.due(datetime(2026, 3, 29, 2, 0, 1, tzinfo=UTC))
    assert [(f.trigger, f.fire) for f in fires] == [("schedule", datetime(2026, 3, 29, 2, 0, tzinfo=UTC))]
    assert table.take_handled() == {"backup:db": datetime(2026, 3, 29, 2, 0, tzinfo=UTC)}
    assert table.due(datetime(2026, 3, 29, 2, 0, 2, tzinfo=UTC)) == []  # handed out once
    assert table.wake_at() == datetime(2026, 3, 30, 2, 0, tzinfo=UTC)


def test_after_three_days_down_a_daily_job_runs_one_catch_up_run() -> None:
    job = Job("backup:db", Timing(cron="0 2 * * *", zone=UTC))
    last = datetime(2026, 3, 26, 2, 0, tzinfo=UTC)
    now = datetime(2026, 3, 29, 9, 0, tzinfo=UTC)
    table = Timetable([job], host="h", now=now, last_fire=lambda name: last)
    fires = table.due(now)
    assert [(f.trigger, f.missed) for f in fires] == [("catch-up", 3)]
    assert table.due(now + timedelta(minutes=1)) == []
    assert table.wake_at() == datetime(2026, 3, 30, 2, 0, tzinfo=UTC)


def test_missed_skip_waits_for_the_next_time() -> None:
    job = Job("backup:db", Timing(cron="0 2 * * *", zone=UTC, missed="skip"))
    now = datetime(2026, 3, 29, 9, 0, tzinfo=UTC)
    table = Timetable([job], host="h", now=now, last_fire=lambda name: datetime(2026, 3, 26, 2, 0, tzinfo=UTC))
    assert table.due(now) == []
    assert table.wake_at() == datetime(2026, 3, 30, 2, 0, tzinfo=UTC)


def test_retries_back_off_and_stop_after_the_last_one() -> None:
    timing = Timing(every=timedelta(hours=1), retries=2, retry_delay=timedelta(seconds=10))
    job = Job("backup:db", timing)
    table = Timetable([job], host="h", now=T0, last_fire=never)
    assert [f.trigger for f in table.due(T0)] == ["schedule"]
    assert table.retry("backup:db", attempt=1, exit_code=16, now=T0) == T0 + timedelta(seconds=10)
    fires = table.due(T0 + timedelta(seconds=10))
    assert [(f.trigger, f.attempt) for f in fires] == [("retry", 2)]
    assert table.retry("backup:db", attempt=2, exit_code=16, now=T0 + timedelta(seconds=11)) == T0 + timedelta(
        seconds=31
    )
    assert table.retry("backup:db", attempt=3, exit_code=16, now=T0 + timedelta(seconds=40)) is None  # 2 retries used
    assert table.retry("backup:db", attempt=1, exit_code=13, now=T0) is None  # damaged data: no retry


def test_a_reload_keeps_an_unchanged_job_and_reschedules_a_changed_one() -> None:
    daily = Job("backup:db", Timing(cron="0 2 * * *", zone=UTC))
    check = Job("check:main", Timing(cron="0 5 * * 0", zone=UTC), kind="check", target="main")
    table = Timetable([daily, check], host="h", now=T0, last_fire=never)
    hourly = Job("check:main", Timing(every=timedelta(hours=1)), kind="check", target="main")
    table.replace([daily, hourly], now=T0 + timedelta(minutes=5), last_fire=never)
    times = table.next_times()
    assert times["backup:db"] == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    assert [(f.job.name, f.trigger) for f in table.due(T0 + timedelta(minutes=5))] == [("check:main", "schedule")]
    table.replace([daily], now=T0 + timedelta(minutes=6), last_fire=never)
    assert list(table.next_times()) == ["backup:db"]


def test_a_reload_the_catalog_cannot_answer_for_changes_nothing() -> None:
    """A reload whose new job's last run cannot be read (the catalog is down) fails whole: the
    jobs and their next times stay those of the configuration in use."""
    kept = Job("backup:db", Timing(cron="0 2 * * *", zone=UTC))
    table = Timetable([kept], host="h", now=T0, last_fire=never)
    before = table.wake_at()

    def unavailable(job: str) -> datetime | None:
        raise OSError("the catalog went away")

    reprioritised = Job("backup:db", kept.timing, priority=99)  # same timing: kept, its job replaced
    added = Job("verify:db", Timing(cron="0 4 * * *", zone=UTC), kind="verify")
    try:
        table.replace([reprioritised, added], now=T0, last_fire=unavailable)
    except OSError:
        pass
    else:
        raise AssertionError("the failure was not raised")
    assert list(table.jobs) == [kept]  # not the reprioritised one: nothing of the reload took
    assert table.wake_at() == before
