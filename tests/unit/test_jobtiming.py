"""When scheduled jobs run: cron in a zone across daylight saving changes, intervals, jitter,
missed runs, retries, priorities — and simulated days (a fake clock driving the pure logic the
daemon uses) that fire every job exactly when expected, written out by hand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from lifeboat.core.jobtiming import (
    MAX_COUNTED,
    Due,
    Timing,
    check_cron,
    cron_next,
    due,
    every_hour,
    first_run,
    jitter_offset,
    next_run,
    priority_for,
    retry_delay,
    retryable,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def utc(text: str) -> datetime:
    """``2026-03-29 01:00`` as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(moment: datetime, zone: tzinfo) -> str:
    """How a clock on the wall in ``zone`` shows ``moment``: ``2026-03-29 03:00 CEST``."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def cron(expression: str, zone: tzinfo = UTC, **kw: object) -> Timing:
    return Timing(cron=expression, zone=zone, **kw)  # type: ignore[arg-type]


# --- cron in a zone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        # plain times, UTC and a zone without a change nearby
        ("0 2 * * *", UTC, "2026-06-01 00:00", "2026-06-01 02:00 UTC"),
        ("0 2 * * *", UTC, "2026-06-01 02:00", "2026-06-02 02:00 UTC"),  # strictly after
        ("0 2 * * *", BERLIN, "2026-05-31 22:00", "2026-06-01 02:00 CEST"),
        ("@daily", BERLIN, "2026-01-10 12:00", "2026-01-11 00:00 CET"),
        ("@weekly", UTC, "2026-06-01 00:00", "2026-06-07 00:00 UTC"),  # a Sunday
        ("0 4 * * 0", BERLIN, "2026-03-24 00:00", "2026-03-29 04:00 CEST"),
        ("0 0 29 2 *", UTC, "2026-03-01 00:00", "2028-02-29 00:00 UTC"),  # the next leap day
        ("*/15 9-17 * * 1-5", NEW_YORK, "2026-06-05 21:50", "2026-06-08 09:00 EDT"),  # Friday evening → Monday
        # spring forward, Berlin 2026-03-29 02:00 CET → 03:00 CEST: skipped wall times run at 03:00
        ("30 2 * * *", BERLIN, "2026-03-28 23:00", "2026-03-29 03:00 CEST"),
        ("0 2 * * *", BERLIN, "2026-03-28 23:00", "2026-03-29 03:00 CEST"),
        ("30 2 * * *", BERLIN, "2026-03-29 01:00", "2026-03-30 02:30 CEST"),  # ran at 03:00: once
        ("0 3 * * *", BERLIN, "2026-03-28 23:00", "2026-03-29 03:00 CEST"),
        ("59 1 * * *", BERLIN, "2026-03-28 23:00", "2026-03-29 01:59 CET"),
        # fall back, Berlin 2026-10-25 03:00 CEST → 02:00 CET: a repeated wall time runs once, the first time
        ("30 2 * * *", BERLIN, "2026-10-24 22:00", "2026-10-25 02:30 CEST"),
        ("30 2 * * *", BERLIN, "2026-10-25 00:30", "2026-10-26 02:30 CET"),
        ("30 2 * * *", BERLIN, "2026-10-25 01:00", "2026-10-26 02:30 CET"),  # inside the second 02:00-03:00
        ("0 3 * * *", BERLIN, "2026-10-25 00:30", "2026-10-25 03:00 CET"),
        # every hour follows real time: both 02:00s of the fall-back, no 02:00 in the spring
        ("0 * * * *", BERLIN, "2026-10-25 00:00", "2026-10-25 02:00 CET"),
        ("0 * * * *", BERLIN, "2026-10-24 23:30", "2026-10-25 02:00 CEST"),
        ("0 * * * *", BERLIN, "2026-03-29 00:00", "2026-03-29 03:00 CEST"),
        ("30 * * * *", BERLIN, "2026-03-29 00:30", "2026-03-29 03:30 CEST"),
        # New York: 2026-03-08 02:00 EST → 03:00 EDT, 2026-11-01 02:00 EDT → 01:00 EST
        ("30 2 * * *", NEW_YORK, "2026-03-08 06:00", "2026-03-08 03:00 EDT"),
        ("30 1 * * *", NEW_YORK, "2026-11-01 05:30", "2026-11-02 01:30 EST"),
        ("0 * * * *", NEW_YORK, "2026-11-01 05:00", "2026-11-01 01:00 EST"),
    ],
)
def test_cron_next_in_a_zone(expression: str, zone: tzinfo, after: str, expected: str) -> None:
    assert local(cron_next(expression, zone, utc(after)), zone) == expected


def test_cron_times_are_utc() -> None:
    fire = cron_next("30 2 * * *", BERLIN, utc("2026-03-28 23:00"))
    assert fire.tzinfo == UTC and fire == utc("2026-03-29 01:00")


@pytest.mark.parametrize(
    ("expression", "hourly"),
    [("0 * * * *", True), ("*/15 * * * *", True), ("0 0-23 * * *", True), ("@hourly", True), ("0 */2 * * *", False),
     ("30 2 * * *", False), ("* 2 * * *", False), ("@daily", False)],
)  # fmt: skip
def test_which_expressions_follow_real_time(expression: str, hourly: bool) -> None:
    assert every_hour(expression) is hourly


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 25 * * *", "is not a valid cron expression"),
        ("0 2 * *", "it has 4 fields"),
        ("0 0 * * * *", "it has 6 fields"),
        ("@reboot", "unknown cron name"),
        ("0 0 31 2 *", "never matches a date"),
        ("", "it has 0 fields"),
    ],
)
def test_bad_cron_expressions(expression: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_cron(expression)
    with pytest.raises(ValueError, match=reason):
        Timing(cron=expression)


def test_a_timing_has_one_way_of_running() -> None:
    with pytest.raises(ValueError, match="one of cron or every"):
        Timing()
    with pytest.raises(ValueError, match="one of cron or every"):
        Timing(cron="@daily", every=HOUR)
    with pytest.raises(ValueError, match="longer than 0"):
        Timing(every=timedelta(0))
    assert Timing(every=timedelta(hours=6, minutes=30)).text == "every 6h30min"
    assert cron("0 2 * * *", BERLIN).text == "cron 0 2 * * *" and cron("@daily", BERLIN).zone_name == "Europe/Berlin"


# --- jitter ---------------------------------------------------------------------------------


def test_jitter_is_a_fixed_offset_per_host_and_job_within_bounds() -> None:
    timing = cron("0 2 * * *", jitter=timedelta(minutes=30))
    offsets = {jitter_offset(timing, host=f"host{n}", job="backup:db") for n in range(200)}
    assert all(timedelta(0) <= offset < timedelta(minutes=30) for offset in offsets)
    assert len(offsets) > 150  # hosts spread out
    assert max(offsets) - min(offsets) > timedelta(minutes=25)
    # stable: the same on every call and every restart (a hash, not a random draw)
    assert jitter_offset(timing, host="db1", job="backup:db") == timedelta(minutes=14, seconds=45)
    assert jitter_offset(timing, host="db2", job="backup:db") == timedelta(minutes=28, seconds=38)
    assert jitter_offset(timing, host="db1", job="verify:db") != jitter_offset(timing, host="db1", job="backup:db")
    assert jitter_offset(cron("0 2 * * *"), host="db1", job="backup:db") == timedelta(0)


def test_jitter_shifts_every_cron_time_by_the_same_offset() -> None:
    timing = cron("0 2 * * *", BERLIN, jitter=timedelta(minutes=30))
    fires = [next_run(timing, utc("2026-03-27 12:00"), host="db1", job="backup:db")]
    for _ in range(3):
        fires.append(next_run(timing, fires[-1], host="db1", job="backup:db"))
    assert [local(f, BERLIN) for f in fires] == [
        "2026-03-28 02:14 CET",
        "2026-03-29 03:14 CEST",  # 02:00 did not exist: 03:00 plus the offset
        "2026-03-30 02:14 CEST",
        "2026-03-31 02:14 CEST",
    ]
    assert all(f.second == 45 for f in fires)


# --- intervals ------------------------------------------------------------------------------


def test_an_interval_counts_from_the_last_run_and_starts_at_start_plus_jitter() -> None:
    timing = Timing(every=timedelta(hours=6), jitter=timedelta(minutes=10))
    start = utc("2026-03-28 11:00")
    first = first_run(timing, start, host="db1", job="copy:offsite")
    assert first == start + timedelta(minutes=9, seconds=14)
    assert next_run(timing, first, host="db1", job="copy:offsite") == first + timedelta(hours=6)
    assert next_run(timing, utc("2026-03-28 13:07"), host="x", job="y") == utc("2026-03-28 19:07")
    assert first_run(Timing(every=HOUR), start, host="db1", job="copy:offsite") == start


def test_a_cron_job_that_never_ran_starts_at_its_first_time_at_or_after_start() -> None:
    timing = cron("0 * * * *")
    assert first_run(timing, utc("2026-06-01 10:00"), host="h", job="j") == utc("2026-06-01 10:00")
    assert first_run(timing, utc("2026-06-01 10:00:01"), host="h", job="j") == utc("2026-06-01 11:00")


# --- missed runs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DueCase:
    name: str
    timing: Timing
    last: str | None
    now: str
    fire: str | None
    missed: int
    handled: str | None
    next_time: str
    trigger: str | None


DUE_CASES = [
    DueCase("not yet", cron("0 2 * * *"), "2026-06-01 02:00", "2026-06-01 12:00",
            None, 0, None, "2026-06-02 02:00", None),
    DueCase("on time", cron("0 2 * * *"), "2026-06-01 02:00", "2026-06-02 02:00",
            "2026-06-02 02:00", 0, "2026-06-02 02:00", "2026-06-03 02:00", "schedule"),
    DueCase("a few minutes late is on time", cron("0 2 * * *"), "2026-06-01 02:00", "2026-06-02 02:04",
            "2026-06-02 02:00", 0, "2026-06-02 02:00", "2026-06-03 02:00", "schedule"),
    DueCase("down for three days: one catch-up run", cron("0 2 * * *"), "2026-06-01 02:00", "2026-06-04 09:00",
            "2026-06-04 02:00", 3, "2026-06-04 02:00", "2026-06-05 02:00", "catch-up"),
    DueCase("down for three days, skip: none", cron("0 2 * * *", missed="skip"), "2026-06-01 02:00",
            "2026-06-04 09:00", None, 3, "2026-06-04 02:00", "2026-06-05 02:00", None),
    DueCase("one time missed, skip", cron("0 2 * * *", missed="skip"), "2026-06-01 02:00", "2026-06-02 02:06",
            None, 1, "2026-06-02 02:00", "2026-06-03 02:00", None),
    DueCase("back just in time for the latest", cron("0 * * * *"), "2026-06-01 02:00", "2026-06-01 05:01",
            "2026-06-01 05:00", 2, "2026-06-01 05:00", "2026-06-01 06:00", "schedule"),
    DueCase("never ran: nothing before start was missed", cron("0 2 * * *"), None, "2026-06-01 12:00",
            None, 0, None, "2026-06-02 02:00", None),
    DueCase("interval on time", Timing(every=timedelta(hours=6)), "2026-06-01 00:00", "2026-06-01 06:00",
            "2026-06-01 06:00", 0, "2026-06-01 06:00", "2026-06-01 12:00", "schedule"),
    DueCase("interval after downtime: catch up now, count from it", Timing(every=timedelta(hours=6)),
            "2026-06-01 00:00", "2026-06-02 01:30", "2026-06-02 01:30", 4, "2026-06-02 01:30", "2026-06-02 07:30",
            "catch-up"),
    DueCase("interval after downtime, skip: wait for the next time", Timing(every=timedelta(hours=6), missed="skip"),
            "2026-06-01 00:00", "2026-06-02 01:30", None, 4, "2026-06-02 00:00", "2026-06-02 06:00", None),
    DueCase("a minutely job down for a month: one run, missed counted up to a bound", cron("* * * * *"),
            "2026-06-01 00:00", "2026-07-01 12:00:30", "2026-07-01 12:00", MAX_COUNTED, "2026-07-01 12:00",
            "2026-07-01 12:01", "schedule"),
    DueCase("a daily job down for two years: one catch-up run", cron("0 2 * * *"), "2024-06-01 02:00",
            "2026-06-01 12:00", "2026-06-01 02:00", 730, "2026-06-01 02:00", "2026-06-02 02:00", "catch-up"),
]  # fmt: skip


@pytest.mark.parametrize("case", DUE_CASES, ids=[c.name for c in DUE_CASES])
def test_due(case: DueCase) -> None:
    got = due(case.timing, utc(case.last) if case.last else None, utc(case.now), host="h", job="j")
    assert got == Due(
        utc(case.fire) if case.fire else None,
        case.missed,
        utc(case.handled) if case.handled else None,
        utc(case.next_time),
        catch_up=case.trigger == "catch-up",
    )
    assert got.trigger == case.trigger


def test_an_interval_job_that_never_ran_waits_for_start_plus_jitter() -> None:
    timing = Timing(every=HOUR, jitter=timedelta(minutes=10))
    start = utc("2026-06-01 10:00")
    offset = jitter_offset(timing, host="h", job="j")
    assert offset > timedelta(0)
    waiting = due(timing, None, start, host="h", job="j", start=start)
    assert (waiting.fire_time, waiting.next_time) == (None, start + offset)
    running = due(timing, None, start + offset, host="h", job="j", start=start)
    assert running.fire_time == start + offset and running.next_time == start + offset + HOUR


# --- retries and priorities -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "delay"),
    [(1, timedelta(minutes=1)), (2, timedelta(minutes=2)), (3, timedelta(minutes=4)), (5, timedelta(minutes=16)),
     (6, timedelta(minutes=30)), (20, timedelta(minutes=30)), (1000, timedelta(minutes=30))],
)  # fmt: skip
def test_retry_delays_double_up_to_the_maximum(attempt: int, delay: timedelta) -> None:
    assert retry_delay(attempt, cron("@daily")) == delay


def test_retry_delays_of_a_timing() -> None:
    timing = Timing(every=HOUR, retry_delay=timedelta(seconds=10), retry_max_delay=timedelta(seconds=45))
    assert [retry_delay(n, timing).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 45]
    with pytest.raises(ValueError, match="counted from 1"):
        retry_delay(0, timing)


@pytest.mark.parametrize(
    ("code", "again"),
    [(1, True), (11, True), (14, True), (16, True), (2, False), (12, False), (13, False), (17, False),
     (130, False), (0, False), (3, False), (10, False), (15, False)],
)  # fmt: skip
def test_which_exit_codes_are_retried(code: int, again: bool) -> None:
    assert retryable(code) is again


def test_default_priorities_put_wal_bound_work_first_and_drills_last() -> None:
    assert priority_for("backup", "postgres") == 60
    order = ["backup", "retention", "prune", "copy", "check", "verify", "drill"]
    priorities = [priority_for(kind, "files") for kind in order]
    assert priorities == [50, 40, 35, 30, 25, 20, 10]
    assert priority_for("drill") < priority_for("backup", "postgres")


# --- simulated days: a fake clock, the daemon's decisions, every fire time by hand ----------------


def simulate(
    jobs: dict[str, Timing],
    start: datetime,
    end: datetime,
    *,
    host: str = "db1",
    step: timedelta | None = None,
    down: tuple[datetime, datetime] | None = None,
) -> dict[str, list[datetime]]:
    """Drive ``due`` as the daemon does: at each instant it looks (every ``step``, or only at
    the next scheduled time of some job), run what is due and remember what was handled.
    While ``down`` the daemon does not look at all."""
    last: dict[str, datetime | None] = dict.fromkeys(jobs)
    fired: dict[str, list[datetime]] = {name: [] for name in jobs}
    now = start
    while now <= end:
        if down is not None and down[0] <= now < down[1]:
            now = down[1]
            continue
        wake = end + MIN
        for name, timing in jobs.items():
            decision = due(timing, last[name], now, host=host, job=name, start=start)
            if decision.fire_time is not None:
                assert now - decision.fire_time <= timedelta(minutes=5) or decision.catch_up
                fired[name].append(decision.fire_time)
            if decision.handled is not None:
                last[name] = decision.handled
            assert decision.next_time > now
            wake = min(wake, decision.next_time)
        now = now + step if step is not None else wake
    return fired


def shown(fired: dict[str, list[datetime]], zone: tzinfo) -> dict[str, list[str]]:
    return {name: [local(moment, zone) for moment in moments] for name, moments in fired.items()}


def both_ways(jobs: dict[str, Timing], start: datetime, end: datetime, **kw: object) -> dict[str, list[datetime]]:
    """Event by event and minute by minute must agree."""
    by_event = simulate(jobs, start, end, **kw)  # type: ignore[arg-type]
    by_minute = simulate(jobs, start, end, step=MIN, **kw)  # type: ignore[arg-type]
    assert by_event == by_minute
    return by_event


def hourly(first: str, count: int) -> list[datetime]:
    return [utc(first) + n * HOUR for n in range(count)]


def day_jobs(zone: tzinfo) -> dict[str, Timing]:
    return {
        "backup:db": cron("0 2 * * *", zone),
        "retention:db": cron("30 2 * * *", zone, jitter=timedelta(minutes=30)),
        "verify:db": cron("0 * * * *", zone),
        "check:main": cron("15 1-3 * * *", zone),
        "drill:db": cron("0 4 * * 0", zone),
        "copy:offsite": Timing(every=timedelta(hours=6), jitter=timedelta(minutes=10)),
    }


def test_a_simulated_day_across_the_spring_change_in_berlin() -> None:
    # Sunday 2026-03-29: at 02:00 CET the clocks go to 03:00 CEST.
    start, end = utc("2026-03-28 11:00"), utc("2026-03-30 10:59")  # noon to noon, local
    fired = both_ways(day_jobs(BERLIN), start, end)
    assert shown(fired, BERLIN) | {"verify:db": []} == {
        "backup:db": ["2026-03-29 03:00 CEST", "2026-03-30 02:00 CEST"],
        # jitter: host db1's offset for retention:db is 24 min 57 s, after 03:00 (02:30 did not exist)
        "retention:db": ["2026-03-29 03:24 CEST", "2026-03-30 02:54 CEST"],
        "verify:db": [],
        "check:main": [
            "2026-03-29 01:15 CET",
            "2026-03-29 03:00 CEST",  # 02:15 did not exist
            "2026-03-29 03:15 CEST",
            "2026-03-30 01:15 CEST",
            "2026-03-30 02:15 CEST",
            "2026-03-30 03:15 CEST",
        ],
        "drill:db": ["2026-03-29 04:00 CEST"],
        "copy:offsite": [  # every 6 real hours from 12:09:14 CET: the wall clock shows 7 across the change
            "2026-03-28 12:09 CET",
            "2026-03-28 18:09 CET",
            "2026-03-29 00:09 CET",
            "2026-03-29 07:09 CEST",
            "2026-03-29 13:09 CEST",
            "2026-03-29 19:09 CEST",
            "2026-03-30 01:09 CEST",
            "2026-03-30 07:09 CEST",
        ],
    }
    # every real hour, once: 47 hours of 48 on the wall
    assert fired["verify:db"] == hourly("2026-03-28 11:00", 48)
    assert shown(fired, BERLIN)["verify:db"][12:16] == [
        "2026-03-29 00:00 CET",
        "2026-03-29 01:00 CET",
        "2026-03-29 03:00 CEST",
        "2026-03-29 04:00 CEST",
    ]


def test_a_simulated_day_across_the_autumn_change_in_berlin() -> None:
    # Sunday 2026-10-25: at 03:00 CEST the clocks go back to 02:00 CET.
    start, end = utc("2026-10-24 10:00"), utc("2026-10-26 10:59")
    fired = both_ways(day_jobs(BERLIN), start, end)
    assert shown(fired, BERLIN) | {"verify:db": []} == {
        "backup:db": ["2026-10-25 02:00 CEST", "2026-10-26 02:00 CET"],  # 02:00 came twice: once
        "retention:db": ["2026-10-25 02:54 CEST", "2026-10-26 02:54 CET"],
        "verify:db": [],
        "check:main": [
            "2026-10-25 01:15 CEST",
            "2026-10-25 02:15 CEST",  # not again at 02:15 CET
            "2026-10-25 03:15 CET",
            "2026-10-26 01:15 CET",
            "2026-10-26 02:15 CET",
            "2026-10-26 03:15 CET",
        ],
        "drill:db": ["2026-10-25 04:00 CET"],
        "copy:offsite": [  # the wall clock shows 5 hours across the change
            "2026-10-24 12:09 CEST",
            "2026-10-24 18:09 CEST",
            "2026-10-25 00:09 CEST",
            "2026-10-25 05:09 CET",
            "2026-10-25 11:09 CET",
            "2026-10-25 17:09 CET",
            "2026-10-25 23:09 CET",
            "2026-10-26 05:09 CET",
            "2026-10-26 11:09 CET",
        ],
    }
    assert fired["verify:db"] == hourly("2026-10-24 10:00", 49)  # 49 real hours
    assert shown(fired, BERLIN)["verify:db"][13:17] == [
        "2026-10-25 01:00 CEST",
        "2026-10-25 02:00 CEST",
        "2026-10-25 02:00 CET",  # every hour fires at each real hour
        "2026-10-25 03:00 CET",
    ]


def test_simulated_days_across_both_changes_in_new_york() -> None:
    # Sunday 2026-03-08: 02:00 EST → 03:00 EDT. Sunday 2026-11-01: 02:00 EDT → 01:00 EST.
    jobs = {
        "backup:db": cron("30 2 * * *", NEW_YORK),
        "retention:db": cron("30 1 * * *", NEW_YORK),
        "verify:db": cron("*/30 * * * *", NEW_YORK),
    }
    spring = both_ways(jobs, utc("2026-03-07 17:00"), utc("2026-03-09 16:59"))
    assert shown(spring, NEW_YORK) | {"verify:db": []} == {
        "backup:db": ["2026-03-08 03:00 EDT", "2026-03-09 02:30 EDT"],
        "retention:db": ["2026-03-08 01:30 EST", "2026-03-09 01:30 EDT"],
        "verify:db": [],
    }
    assert spring["verify:db"] == [utc("2026-03-07 17:00") + n * timedelta(minutes=30) for n in range(96)]
    autumn = both_ways(jobs, utc("2026-10-31 16:00"), utc("2026-11-02 16:59"))
    assert shown(autumn, NEW_YORK) | {"verify:db": []} == {
        "backup:db": ["2026-11-01 02:30 EST", "2026-11-02 02:30 EST"],
        "retention:db": ["2026-11-01 01:30 EDT", "2026-11-02 01:30 EST"],  # 01:30 came twice: once
        "verify:db": [],
    }
    assert autumn["verify:db"] == [utc("2026-10-31 16:00") + n * timedelta(minutes=30) for n in range(98)]
    assert shown(autumn, NEW_YORK)["verify:db"][26:30] == [
        "2026-11-01 01:00 EDT",
        "2026-11-01 01:30 EDT",
        "2026-11-01 01:00 EST",
        "2026-11-01 01:30 EST",
    ]


def test_a_simulated_outage_runs_each_job_once_when_the_daemon_is_back() -> None:
    jobs = {
        "backup:db": cron("0 * * * *", UTC),
        "verify:db": cron("0 * * * *", UTC, missed="skip"),
        "copy:offsite": Timing(every=timedelta(hours=2)),
    }
    start, end = utc("2026-06-01 00:00"), utc("2026-06-01 12:00")
    fired = both_ways(jobs, start, end, down=(utc("2026-06-01 03:30"), utc("2026-06-01 08:20")))
    assert fired == {
        # 04:00..08:00 were missed: one catch-up run when the daemon is back at 08:20, then on schedule
        "backup:db": [*hourly("2026-06-01 00:00", 4), utc("2026-06-01 08:00"), *hourly("2026-06-01 09:00", 4)],
        "verify:db": hourly("2026-06-01 00:00", 4) + hourly("2026-06-01 09:00", 4),
        "copy:offsite": [utc("2026-06-01 00:00"), utc("2026-06-01 02:00"), utc("2026-06-01 08:20"),
                         utc("2026-06-01 10:20")],
    }  # fmt: skip


def test_a_simulated_day_is_the_same_on_every_run() -> None:
    jobs: Callable[[], dict[str, Timing]] = lambda: day_jobs(BERLIN)  # noqa: E731
    first = simulate(jobs(), utc("2026-10-24 10:00"), utc("2026-10-26 10:59"))
    again = simulate(jobs(), utc("2026-10-24 10:00"), utc("2026-10-26 10:59"))
    other_host = simulate(jobs(), utc("2026-10-24 10:00"), utc("2026-10-26 10:59"), host="db2")
    assert first == again
    assert first["retention:db"] != other_host["retention:db"]  # jitter spreads the hosts
    assert first["backup:db"] == other_host["backup:db"]  # no jitter, same times


# --- a year in several zones: the rules hold on every day, not only on the days tested above ----

SYDNEY = ZoneInfo("Australia/Sydney")  # the southern hemisphere: the changes in April and October
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # a change of 30 minutes


def fires_in(expression: str, zone: tzinfo, start: datetime, end: datetime) -> list[datetime]:
    fires, moment = [], start
    while (moment := cron_next(expression, zone, moment)) < end:
        fires.append(moment)
    return fires


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, SYDNEY, LORD_HOWE], ids=str)
@pytest.mark.parametrize("expression", ["30 2 * * *", "15 2 * * *", "0 3 * * *", "59 1 * * *"])
def test_a_daily_time_runs_once_on_every_day_of_a_year(expression: str, zone: tzinfo) -> None:
    start = datetime(2026, 1, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(2027, 1, 1, tzinfo=zone).astimezone(UTC)
    fires = fires_in(expression, zone, start - timedelta(microseconds=1), end)
    days = [moment.astimezone(zone).date() for moment in fires]
    assert len(days) == 365 and len(set(days)) == 365
    minute, hour = (int(field) for field in expression.split()[:2])
    moved = [local(m, zone) for m in fires if (m.astimezone(zone).hour, m.astimezone(zone).minute) != (hour, minute)]
    assert len(moved) <= 1  # only on the night the wall time does not exist, to the end of the gap


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, SYDNEY], ids=str)
def test_every_hour_fires_at_each_real_hour_of_a_year(zone: tzinfo) -> None:
    start = datetime(2026, 1, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(2027, 1, 1, tzinfo=zone).astimezone(UTC)
    fires = fires_in("0 * * * *", zone, start - timedelta(microseconds=1), end)
    assert fires == [start + n * HOUR for n in range(8760)]
