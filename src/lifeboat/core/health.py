"""Health against objectives: the states, the thresholds and the rules that judge each check.

``lifeboat health`` (and later the daemon) gathers facts — the newest restorable point of a
source, the archiver's counters, the repository's locks, the last drill — and these pure
rules turn each fact into a :class:`State` with a reason and what to do. The thresholds are
constants here, and docs/health.md states each one: a monitoring team must be able to say
why a check is WARNING without reading code.

States follow the Nagios plugin conventions (their values are its exit codes). The overall
state is the worst one, ranked CRITICAL > WARNING > UNKNOWN > OK: something known to be
wrong outranks something that could not be looked at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any


class State(IntEnum):
    """A check's verdict; the value is the Nagios plugin exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def rank(self) -> int:
        """How bad: CRITICAL > WARNING > UNKNOWN > OK."""
        return {State.OK: 0, State.UNKNOWN: 1, State.WARNING: 2, State.CRITICAL: 3}[self]


def worst(states: Iterable[State]) -> State:
    """The overall state of ``states`` (OK when there are none)."""
    return max(states, key=lambda s: s.rank, default=State.OK)


# --- thresholds (docs/health.md, "Thresholds") -----------------------------------------------------
RPO_WARNING_FRACTION = 0.8  # the newest restorable point is at least 80 % of rpo old: WARNING
DRILL_MAX_AGE = timedelta(days=7)  # the last drill older than this: WARNING (no schedule configured)
DRILL_SCHEDULE_FACTOR = 2  # with a drill schedule: older than twice its longest wait between runs
VERIFY_MAX_AGE = timedelta(days=7)  # the last verify older than this: WARNING
READY_BACKLOG_WARNING = 32  # .ready files waiting for archive_command (half a GiB of 16 MiB segments)
FREE_SPACE_WARNING = 0.10  # the repository's file system less than 10 % free: WARNING
FREE_SPACE_CRITICAL = 0.05  # less than 5 % free: CRITICAL


@dataclass(frozen=True)
class Check:
    """One judged fact: about a source (``subject`` = its name) or the repository."""

    subject: str  # a source's name, or "repository"
    name: str  # rpo, wal, archiver, ready, spool, verify, drill, reachable, free-space, locks
    state: State
    summary: str  # one line: what was found
    hint: str = ""  # what to do about it (empty when OK)
    metrics: Mapping[str, float | None] = field(default_factory=dict)  # numbers behind the summary

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "check": self.name,
            "state": self.state.name,
            "summary": self.summary,
            "hint": self.hint,
            "metrics": dict(self.metrics),
        }


def span(seconds: float) -> str:
    """A short human duration: ``45s``, ``12min``, ``2h``, ``3d``."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{int(seconds)}s"
    if seconds < 2 * 3600:
        return f"{int(seconds // 60)}min"
    if seconds < 2 * 86400:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours}h{rest // 60:02d}m" if hours < 10 and rest >= 60 else f"{hours}h"
    return f"{int(seconds // 86400)}d"


def judge_rpo(
    subject: str,
    newest: datetime | None,
    rpo: timedelta | None,
    now: datetime,
    *,
    what: str = "newest restorable point",
    configured: bool = True,
) -> Check:
    """The newest restorable point against ``rpo``: older than rpo is CRITICAL, at least
    :data:`RPO_WARNING_FRACTION` of it WARNING. Nothing restorable at all is CRITICAL for a
    configured source (it is meant to be backed up)."""
    rpo_s = rpo.total_seconds() if rpo is not None else None
    if newest is None:
        state = State.CRITICAL if configured else State.UNKNOWN
        return Check(
            subject,
            "rpo",
            state,
            "nothing restorable: no backup in the repository",
            f"take a backup: 'lifeboat backup --source {subject}'",
            {"age_seconds": None, "rpo_seconds": rpo_s, "newest_timestamp": None},
        )
    age = (now - newest).total_seconds()
    metrics = {"age_seconds": age, "rpo_seconds": rpo_s, "newest_timestamp": newest.timestamp()}
    found = f"{what} {span(age)} ago"
    if rpo is None:
        return Check(subject, "rpo", State.OK, f"{found} (no rpo set)", "", metrics)
    limit = f"rpo {span(rpo_s or 0)}"
    if age > rpo_s:  # type: ignore[operator]
        return Check(
            subject,
            "rpo",
            State.CRITICAL,
            f"{found} ({limit})",
            "backups or WAL archiving are not keeping up: check the scheduler (or archiving), then "
            f"'lifeboat backup --source {subject}'",
            metrics,
        )
    if age >= RPO_WARNING_FRACTION * rpo_s:  # type: ignore[operator]
        return Check(
            subject,
            "rpo",
            State.WARNING,
            f"{found} ({limit}; {int(RPO_WARNING_FRACTION * 100)} % of it used)",
            "the next backup is due: check that it runs",
            metrics,
        )
    return Check(subject, "rpo", State.OK, f"{found} ({limit})", "", metrics)


@dataclass(frozen=True)
class ArchiverStats:
    """``pg_stat_archiver``'s row."""

    archived_count: int
    last_archived_wal: str | None
    last_archived_time: datetime | None
    failed_count: int
    last_failed_wal: str | None
    last_failed_time: datetime | None

    @property
    def failing(self) -> bool:
        """Whether the last attempt failed: a failure with no success after it."""
        return bool(
            self.failed_count
            and self.last_failed_time is not None
            and (self.last_archived_time is None or self.last_failed_time > self.last_archived_time)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "archived_count": self.archived_count,
            "last_archived_wal": self.last_archived_wal,
            "last_archived_time": self.last_archived_time.isoformat() if self.last_archived_time else None,
            "failed_count": self.failed_count,
            "last_failed_wal": self.last_failed_wal,
            "last_failed_time": self.last_failed_time.isoformat() if self.last_failed_time else None,
        }


def judge_archiver(subject: str, stats: ArchiverStats, now: datetime) -> Check:
    """A failure since the last success is CRITICAL (archiving is stuck: WAL piles up in
    pg_wal and the RPO grows); older failures are only counted."""
    age = (now - stats.last_archived_time).total_seconds() if stats.last_archived_time else None
    metrics = {
        "archived_total": float(stats.archived_count),
        "failed_total": float(stats.failed_count),
        "last_archived_age_seconds": age,
        "last_archived_timestamp": stats.last_archived_time.timestamp() if stats.last_archived_time else None,
        "last_failed_timestamp": stats.last_failed_time.timestamp() if stats.last_failed_time else None,
    }
    last = (
        f"last archived {stats.last_archived_wal} {span(age)} ago"
        if stats.last_archived_wal and age is not None
        else "nothing archived yet"
    )
    if stats.failing:
        when = stats.last_failed_time
        failed_ago = span((now - when).total_seconds()) if when else "?"
        return Check(
            subject,
            "archiver",
            State.CRITICAL,
            f"archiving fails: {stats.last_failed_wal} failed {failed_ago} ago ({stats.failed_count} failures; {last})",
            "the server log has archive_command's error; 'lifeboat pg check' tests archiving end to end",
            metrics,
        )
    return Check(
        subject,
        "archiver",
        State.OK,
        f"{stats.archived_count} archived, {stats.failed_count} failed; {last}",
        "",
        metrics,
    )


def judge_ready(subject: str, ready: int | None, how: str) -> Check:
    """The ``.ready`` backlog: WAL PostgreSQL has finished and not yet archived."""
    if ready is None:
        return Check(
            subject,
            "ready",
            State.UNKNOWN,
            f"archive backlog not known ({how})",
            "run health on the database host, or let its user count the backlog: GRANT pg_monitor TO <user>",
            {"files": None},
        )
    if ready >= READY_BACKLOG_WARNING:
        return Check(
            subject,
            "ready",
            State.WARNING,
            f"{ready} WAL files wait to be archived",
            "archiving lags behind the server: see the archiver check and the spool's worker.log",
            {"files": float(ready)},
        )
    return Check(subject, "ready", State.OK, f"{ready} WAL files wait to be archived", "", {"files": float(ready)})


def drill_max_age(schedule: str | timedelta | None) -> timedelta:
    """How old the last drill may be: twice the longest wait between the runs ``schedule`` (a
    cron expression, or the interval of ``schedule.drill: {every: …}``) makes, else
    :data:`DRILL_MAX_AGE`."""
    from lifeboat.core.schedule import longest_interval

    if isinstance(schedule, timedelta):
        return DRILL_SCHEDULE_FACTOR * schedule
    interval = longest_interval(schedule) if schedule else None
    return DRILL_SCHEDULE_FACTOR * interval if interval is not None else DRILL_MAX_AGE


def judge_recorded(
    subject: str,
    kind: str,
    result: RecordedResult | None,
    now: datetime,
    *,
    max_age: timedelta,
    failed: State,
    expected: bool,
) -> Check | None:
    """The last ``kind`` (verify, drill) of a source: failed is ``failed``; older than
    ``max_age`` is WARNING; never run is WARNING when ``expected`` (a drill is configured),
    else no check at all."""
    if result is None:
        if not expected:
            return None
        return Check(
            subject,
            kind,
            State.WARNING,
            f"no {kind} recorded",
            f"run 'lifeboat {kind} --source {subject}'",
            {"timestamp": None, "success": None, "age_seconds": None},
        )
    age = (now - result.time).total_seconds()
    metrics = {"timestamp": result.time.timestamp(), "success": 1.0 if result.ok else 0.0, "age_seconds": age}
    said = f": {result.summary}" if result.summary else ""
    if not result.ok:
        return Check(
            subject,
            kind,
            failed,
            f"last {kind} FAILED {span(age)} ago{said}",
            f"'lifeboat records --source {subject}' shows why; fix it and run 'lifeboat {kind} --source {subject}'",
            metrics,
        )
    if age > max_age.total_seconds():
        return Check(
            subject,
            kind,
            State.WARNING,
            f"last {kind} passed {span(age)} ago, longer than {span(max_age.total_seconds())}",
            f"run 'lifeboat {kind} --source {subject}' (or check its schedule)",
            metrics,
        )
    return Check(subject, kind, State.OK, f"last {kind} passed {span(age)} ago{said}", "", metrics)


@dataclass(frozen=True)
class RecordedResult:
    """The newest recorded result of a check (a verify, a drill) of one source."""

    time: datetime
    ok: bool
    summary: str = ""
    # the record's numbers a metric shows, by name (a drill's "rto_seconds", "achieved_rpo_seconds",
    # "rto_objective_seconds", "rpo_objective_seconds"); only those the record has
    figures: Mapping[str, float] = field(default_factory=dict)


def judge_free_space(free: int, total: int) -> Check:
    fraction = free / total if total else 0.0
    metrics = {"free_bytes": float(free), "size_bytes": float(total)}
    text = f"{fraction * 100:.1f} % free ({free // (1024 * 1024)} MiB of {total // (1024 * 1024)} MiB)"
    if fraction < FREE_SPACE_CRITICAL:
        return Check("repository", "free-space", State.CRITICAL, text, "free space or move the repository", metrics)
    if fraction < FREE_SPACE_WARNING:
        return Check(
            "repository",
            "free-space",
            State.WARNING,
            text,
            "'lifeboat forget --prune' frees what retention allows",
            metrics,
        )
    return Check("repository", "free-space", State.OK, text, "", metrics)


__all__ = [
    "DRILL_MAX_AGE",
    "DRILL_SCHEDULE_FACTOR",
    "FREE_SPACE_CRITICAL",
    "FREE_SPACE_WARNING",
    "READY_BACKLOG_WARNING",
    "RPO_WARNING_FRACTION",
    "VERIFY_MAX_AGE",
    "ArchiverStats",
    "Check",
    "RecordedResult",
    "State",
    "drill_max_age",
    "judge_archiver",
    "judge_free_space",
    "judge_ready",
    "judge_recorded",
    "judge_rpo",
    "span",
    "worst",
]
