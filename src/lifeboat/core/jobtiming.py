"""When a scheduled job runs: cron expressions in a time zone, intervals, jitter, missed runs
and retries (docs/daemon.md#schedules).

Pure: no clock, no I/O; every instant in and out is an aware datetime (UTC out). The daemon
asks :func:`due` whether a job is due now and :func:`next_run` when to look again.

Daylight saving time, for a cron expression in a zone that has it:

* an expression that names fixed hours (``30 2 * * *``) follows the wall clock: a wall time
  skipped by the spring-forward jump runs once, at the first instant after the gap (03:00 for
  02:30 in Europe/Berlin); a wall time repeated by the fall-back runs once, the first time;
* an expression that runs every hour (hour field ``*``: ``0 * * * *``, ``*/15 * * * *``)
  follows real time: it fires at each real hour across both changes — in the repeated hour
  it fires in both, and the wall times of a skipped hour do not exist, so they do not fire.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal

from lifeboat.errors import ExitCode

Missed = Literal["once", "skip"]

# cron's @-names (croniter knows them too; kept here so the five fields are always what is checked).
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# The priority a job of each kind has unless its timing gives one (higher runs first).
DEFAULT_PRIORITIES = {
    "backup": 50,
    "retention": 40,
    "prune": 35,
    "copy": 30,
    "check": 25,
    "verify": 20,
    "drill": 10,
}
POSTGRES_BACKUP_PRIORITY = 60  # a base backup bounds how much WAL a recovery replays

# Exit codes (lifeboat/errors.py) worth another attempt: a passing condition (1 error, 11 locked,
# 14 storage unreachable, 16 source failed).
RETRYABLE_EXIT_CODES = frozenset({ExitCode.ERROR, ExitCode.LOCKED, ExitCode.STORAGE, ExitCode.SOURCE_FAILED})
# Every other failure is final, it fails the same way again: a wrong command line or configuration
# (2), a partial backup (3), no repository (10), a wrong passphrase (12), damaged data (13), a
# missing program (15), a missed objective (17), an interrupt (130). The daemon does not retry
# them; the generated systemd units and Kubernetes jobs do not restart them.
FINAL_EXIT_CODES: tuple[int, ...] = tuple(
    int(code) for code in ExitCode if code is not ExitCode.OK and code not in RETRYABLE_EXIT_CODES
)

# A scheduled time the daemon comes to this late was missed (the daemon was down or busy).
MISSED_AFTER = timedelta(minutes=5)
# How many missed times are counted one by one; beyond it, ``missed`` says "at least this many".
MAX_COUNTED = 1000


@dataclass(frozen=True)
class Timing:
    """When a job runs, resolved from the configuration: one of ``cron`` (five fields, in
    ``zone``) or ``every``; ``jitter`` bounds a fixed per-host offset added to each time."""

    cron: str | None = None
    every: timedelta | None = None
    zone: tzinfo = UTC
    jitter: timedelta = timedelta(0)
    timeout: timedelta | None = None
    retries: int = 0
    retry_delay: timedelta = timedelta(minutes=1)
    retry_max_delay: timedelta = timedelta(minutes=30)
    missed: Missed = "once"

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ValueError("a timing has one of cron or every")
        if self.cron is not None:
            check_cron(self.cron)
        if self.every is not None and self.every <= timedelta(0):
            raise ValueError("every must be longer than 0")

    @property
    def zone_name(self) -> str:
        return zone_name(self.zone)

    @property
    def text(self) -> str:
        """How the schedule reads: ``cron 0 2 * * *`` or ``every 6h``."""
        if self.cron is not None:
            return f"cron {self.cron}"
        assert self.every is not None
        return f"every {format_interval(self.every)}"


def zone_name(zone: tzinfo) -> str:
    key = getattr(zone, "key", None)
    return str(key) if key else str(zone)


def format_interval(value: timedelta) -> str:
    """``6h``, ``1h30min``, ``0s``: as a schedule is written."""
    from lifeboat.core.units import duration_parts

    return "".join(duration_parts(value)) or "0s"


def expand(expression: str) -> str:
    """The five fields an expression stands for (``@daily`` → ``0 0 * * *``)."""
    text = expression.strip()
    return ALIASES.get(text.lower(), text)


def check_cron(expression: str) -> None:
    """Raise ValueError (a one-line reason) unless ``expression`` is a five-field cron
    expression or an @-name that matches at least one time."""
    from croniter import croniter

    fields = expand(expression).split()
    if expression.strip().startswith("@") and expression.strip().lower() not in ALIASES:
        raise ValueError(f"unknown cron name {expression.strip()!r} (known: {', '.join(ALIASES)})")
    if len(fields) != 5:
        raise ValueError(
            f"{expression!r} is not a cron expression: it has {len(fields)} field{'s' if len(fields) != 1 else ''}, "
            "cron has 5 "
            "(minute hour day-of-month month day-of-week) or an @-name such as @daily"
        )
    text = " ".join(fields)
    if not croniter.is_valid(text):
        raise ValueError(f"{expression!r} is not a valid cron expression (minute hour day-of-month month day-of-week)")
    try:
        croniter(text, datetime(2024, 1, 1)).get_next(datetime)
    except (ValueError, KeyError) as exc:  # CroniterBadDateError is a ValueError
        raise ValueError(f"cron expression {expression!r} never matches a date") from exc


# --- jitter ---------------------------------------------------------------------------------


def jitter_offset(timing: Timing, *, host: str, job: str) -> timedelta:
    """The fixed offset in [0, jitter) this host adds to each time of ``job``: the same on
    every run and every restart (a hash of host and job), different from host to host."""
    seconds = int(timing.jitter.total_seconds())
    if seconds <= 0:
        return timedelta(0)
    digest = hashlib.blake2b(f"{host}\0{job}".encode(), digest_size=8).digest()
    return timedelta(seconds=int.from_bytes(digest, "big") % seconds)


# --- cron in a zone -------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def every_hour(expression: str) -> bool:
    """Whether ``expression`` runs in every hour of the day (its hour field is ``*``): such an
    expression follows real time across daylight saving changes (see the module's text)."""
    from croniter import croniter

    return bool(croniter(expand(expression)).expanded[1] == ["*"])


def _utc(wall: datetime, zone: tzinfo, fold: int) -> datetime:
    return wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)


def _gap_end(zone: tzinfo, low: datetime, high: datetime) -> datetime:
    """The instant in (low, high] where the zone's clock jumps forward (to the second)."""
    after = high.astimezone(zone).utcoffset()
    lo, hi = 0, int((high - low).total_seconds())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (low + timedelta(seconds=mid)).astimezone(zone).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return low + timedelta(seconds=hi)


def _instants(wall: datetime, zone: tzinfo, *, real_time: bool) -> tuple[datetime, list[datetime]]:
    """The instants a matching wall time fires at, and the earliest instant it stands for.

    An existing wall time fires once. A repeated one (fall-back) fires at its first occurrence,
    and also at its second when the expression follows real time. A skipped one (spring-forward)
    fires at the end of the gap, unless the expression follows real time."""
    first, second = _utc(wall, zone, 0), _utc(wall, zone, 1)
    if first == second:
        return first, [first]
    if first < second:  # repeated
        return first, [first, second] if real_time else [first]
    end = _gap_end(zone, second, first)  # skipped: fold 1 reads it with the offset after the jump
    return end, [] if real_time else [end]


# A cron expression that matched nothing in this many wall times is a bug, not a schedule.
_MAX_STEPS = 200_000


def cron_next(expression: str, zone: tzinfo, after: datetime) -> datetime:
    """The first instant strictly after ``after`` that ``expression`` fires at in ``zone`` (UTC)."""
    return _cron_next(expression, zone, after.astimezone(UTC))


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> Any:
    """croniter's reading of an expression (parsing costs more than stepping: done once)."""
    from croniter import croniter

    return croniter(text, datetime(2000, 1, 1))  # wall times: naive on purpose


def _walls(expression: str, start: datetime) -> Any:
    """The wall times ``expression`` matches after the naive ``start``, one per get_next."""
    walls = copy.copy(_parsed(expand(expression)))  # each caller steps its own copy
    walls.set_current(start, force=True)
    return walls


@functools.lru_cache(maxsize=1024)  # the daemon asks about the same last run again and again
def _cron_next(expression: str, zone: tzinfo, after: datetime) -> datetime:
    real_time = every_hour(expression)
    local = after.astimezone(zone)
    margin = timedelta(0)
    if real_time:  # a fall-back just after `after` repeats wall times that are already behind it
        drop = local.utcoffset() - (after + timedelta(hours=3)).astimezone(zone).utcoffset()  # type: ignore[operator]
        margin = max(drop, timedelta(0))
    walls = _walls(expression, local.replace(tzinfo=None, fold=0) - margin)
    best: datetime | None = None
    for _ in range(_MAX_STEPS):
        wall = walls.get_next(datetime)
        earliest, instants = _instants(wall, zone, real_time=real_time)
        if best is not None and earliest >= best:
            return best  # later wall times fire no earlier than this one's earliest instant
        for instant in instants:
            if instant > after and (best is None or instant < best):
                best = instant
        if best is not None and best == earliest:
            return best  # the earliest instant of this wall time: nothing later comes before it
    raise ValueError(f"cron expression {expression!r} matches no time after {after.isoformat()}")


# --- the schedule of a job ------------------------------------------------------------------


def next_run(timing: Timing, after: datetime, *, host: str, job: str) -> datetime:
    """The scheduled time that follows ``after`` (UTC): a cron time (plus the job's jitter
    offset) strictly after it, or for an interval ``after`` (the last run) plus the interval."""
    if timing.every is not None:
        return after.astimezone(UTC) + timing.every
    assert timing.cron is not None
    offset = jitter_offset(timing, host=host, job=job)
    return cron_next(timing.cron, timing.zone, after - offset) + offset


def first_run(timing: Timing, start: datetime, *, host: str, job: str) -> datetime:
    """A job that never ran: its first cron time at or after ``start``; an interval job runs
    first at ``start`` plus its jitter offset."""
    if timing.every is not None:
        return start.astimezone(UTC) + jitter_offset(timing, host=host, job=job)
    return next_run(timing, start - timedelta(microseconds=1), host=host, job=job)


@dataclass(frozen=True)
class Due:
    """What the daemon does about a job now (:func:`due`).

    ``fire_time`` is the scheduled time a run now stands for (None: no run now); ``missed``
    counts the scheduled times that passed without a run (at most :data:`MAX_COUNTED`, "that
    many or more"); ``handled`` is what to record as the job's last fire (None: nothing
    changed); ``next_time`` is the scheduled time after this decision: when to ask again."""

    fire_time: datetime | None
    missed: int
    handled: datetime | None
    next_time: datetime
    catch_up: bool = False

    @property
    def trigger(self) -> str | None:
        """How the catalog names the run: ``schedule`` or ``catch-up`` (None: no run)."""
        if self.fire_time is None:
            return None
        return "catch-up" if self.catch_up else "schedule"


def _passed(timing: Timing, first: datetime, now: datetime, *, host: str, job: str) -> tuple[int, datetime]:
    """How many scheduled times from ``first`` (which is not after ``now``) are not after
    ``now`` (past :data:`MAX_COUNTED`, one more than it), and the latest of them."""
    if timing.every is not None:
        count = (now - first) // timing.every + 1
        return min(count, MAX_COUNTED + 1), first + (count - 1) * timing.every
    count, latest = 1, first
    while count <= MAX_COUNTED:
        following = next_run(timing, latest, host=host, job=job)
        if following > now:
            return count, latest
        count, latest = count + 1, following
    # Counted enough: find the latest from a window just before now instead of walking to it.
    for window in (timedelta(hours=1), timedelta(days=1), timedelta(days=32), timedelta(days=367)):
        start = max(latest, now - window)
        candidate = next_run(timing, start, host=host, job=job)
        if candidate <= now:
            latest = candidate
            break
    while (following := next_run(timing, latest, host=host, job=job)) <= now:
        latest = following
    return count, latest


def due(
    timing: Timing,
    last_fire: datetime | None,
    now: datetime,
    *,
    host: str,
    job: str,
    start: datetime | None = None,
    late: timedelta = MISSED_AFTER,
) -> Due:
    """Whether ``job`` runs at ``now``, given the scheduled time it last handled.

    A job that never ran (``last_fire`` None) starts from ``start`` (when the daemon started;
    default ``now``): nothing before it was missed. A scheduled time reached within ``late``
    runs as scheduled. Scheduled times further behind were missed (the daemon was down or
    busy): ``missed: once`` runs one catch-up run for all of them, never one per time;
    ``missed: skip`` runs none and waits for the next time."""
    now = now.astimezone(UTC)
    if last_fire is None:
        first = first_run(timing, start if start is not None else now, host=host, job=job)
    else:
        first = next_run(timing, last_fire, host=host, job=job)
    if first > now:
        return Due(None, 0, None, first)
    count, latest = _passed(timing, first, now, host=host, job=job)
    if now - latest <= late:  # the latest is on time; any before it were missed
        return Due(latest, min(count - 1, MAX_COUNTED), latest, next_run(timing, latest, host=host, job=job))
    missed = min(count, MAX_COUNTED)
    if timing.missed == "skip":
        return Due(None, missed, latest, next_run(timing, latest, host=host, job=job))
    fire = latest if timing.every is None else now  # an interval counts from the catch-up run
    return Due(fire, missed, fire, next_run(timing, fire, host=host, job=job), catch_up=True)


# --- retries and priorities -----------------------------------------------------------------


def retry_delay(attempt: int, timing: Timing) -> timedelta:
    """How long to wait before retry number ``attempt`` (1 = the first retry):
    ``retry_delay`` doubled for each retry before it, at most ``retry_max_delay``."""
    if attempt < 1:
        raise ValueError("retries are counted from 1")
    doubled = timing.retry_delay * (1 << min(attempt - 1, 40))
    return min(doubled, timing.retry_max_delay)


def retryable(exit_code: int) -> bool:
    """Whether a run that ended with ``exit_code`` is worth retrying (:data:`RETRYABLE_EXIT_CODES`)."""
    return exit_code in RETRYABLE_EXIT_CODES


def priority_for(kind: str, source_type: str | None = None) -> int:
    """A job's priority unless its timing gives one (higher runs first): a PostgreSQL base
    backup before other backups, WAL-bound work before checks, drills last."""
    if kind == "backup" and source_type == "postgres":
        return POSTGRES_BACKUP_PRIORITY
    return DEFAULT_PRIORITIES[kind]


__all__ = [
    "ALIASES",
    "DEFAULT_PRIORITIES",
    "FINAL_EXIT_CODES",
    "MAX_COUNTED",
    "MISSED_AFTER",
    "POSTGRES_BACKUP_PRIORITY",
    "RETRYABLE_EXIT_CODES",
    "Due",
    "Timing",
    "check_cron",
    "cron_next",
    "due",
    "every_hour",
    "expand",
    "first_run",
    "format_interval",
    "jitter_offset",
    "next_run",
    "priority_for",
    "retry_delay",
    "retryable",
    "zone_name",
]
