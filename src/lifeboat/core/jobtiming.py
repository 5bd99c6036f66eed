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

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

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
# 14 storage unreachable, 16 source failed). Every other code is final: a wrong command line or
# configuration (2), a wrong passphrase (12), damaged data (13), a missed objective (17) or an
# interrupt (130) fails the same way again.
RETRYABLE_EXIT_CODES = frozenset({1, 11, 14, 16})

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
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


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


__all__ = [
    "ALIASES",
    "DEFAULT_PRIORITIES",
    "MAX_COUNTED",
    "MISSED_AFTER",
    "POSTGRES_BACKUP_PRIORITY",
    "RETRYABLE_EXIT_CODES",
    "Timing",
    "check_cron",
    "expand",
    "format_interval",
    "zone_name",
]
