"""The timetable: when each scheduled job runs next, and its pending retry.

Times come from core/jobtiming (cron in a zone, intervals, jitter); the missed-run policy at
start from the catalog's last handled fire of each job (``missed: once`` runs one catch-up run
after downtime, never N; ``skip`` waits for the next time). Pure apart from the clock values
it is given: the service asks :meth:`Timetable.due` at ``now`` and sleeps until
:meth:`Timetable.wake_at`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lifeboat.core import jobtiming


@dataclass(frozen=True)
class Fire:
    """A run to ask for: the job, why, which attempt and the scheduled time it answers."""

    job: Any  # config/jobs.py ScheduledJob
    trigger: str  # schedule | catch-up | retry
    attempt: int
    fire: datetime
    missed: int = 0


@dataclass
class _Entry:
    job: Any
    next_fire: datetime
    retry_at: datetime | None = None
    retry_attempt: int = 0
    catch_up: datetime | None = None
    missed: int = 0


class Timetable:
    """The next times of a set of jobs on ``host``."""

    def __init__(
        self,
        jobs: Iterable[Any],
        *,
        host: str,
        now: datetime,
        last_fire: Callable[[str], datetime | None],
    ) -> None:
        self._host = host
        self._entries: dict[str, _Entry] = {}
        self.replace(jobs, now=now, last_fire=last_fire)

    def _next(self, job: Any, after: datetime) -> datetime:
        return jobtiming.next_run(job.timing, after, host=self._host, job=job.name)

    def replace(self, jobs: Iterable[Any], *, now: datetime, last_fire: Callable[[str], datetime | None]) -> None:
        """Take ``jobs`` as the new set (a reload): a job whose timing is unchanged keeps its next
        time and pending retry; a new or rescheduled one starts from its last fire."""
        entries: dict[str, _Entry] = {}
        for job in jobs:
            old = self._entries.get(job.name)
            if old is not None and old.job.timing == job.timing:
                old.job = job
                entries[job.name] = old
                continue
            entries[job.name] = self._start(job, now, last_fire(job.name))
        self._entries = entries

    def _start(self, job: Any, now: datetime, last: datetime | None) -> _Entry:
        if last is None:
            return _Entry(job, self._next(job, now))
        verdict = jobtiming.due(job.timing, last, now, host=self._host, job=job.name)
        entry = _Entry(job, self._next(job, max(now, last)))
        if verdict.fire_time is not None:
            entry.catch_up, entry.missed = verdict.fire_time, verdict.missed
        return entry

    @property
    def jobs(self) -> list[Any]:
        return [entry.job for entry in self._entries.values()]

    def next_times(self) -> dict[str, datetime]:
        """Each job's next scheduled time."""
        return {name: entry.next_fire for name, entry in self._entries.items()}

    def wake_at(self) -> datetime | None:
        """The earliest time something is due (None: no jobs)."""
        times = []
        for entry in self._entries.values():
            times.append(entry.catch_up or entry.next_fire)
            if entry.retry_at is not None:
                times.append(entry.retry_at)
        return min(times, default=None)

    def due(self, now: datetime) -> list[Fire]:
        """What is due at ``now``; each scheduled time is handed out once. A job whose several
        times passed while the daemon was busy or asleep is due once (the newest time)."""
        fires: list[Fire] = []
        for entry in self._entries.values():
            job = entry.job
            if entry.catch_up is not None and entry.catch_up <= now:
                fires.append(Fire(job, "catch-up", 1, entry.catch_up, entry.missed))
                entry.catch_up = None
            if entry.next_fire <= now:
                fire = entry.next_fire
                while (following := self._next(job, fire)) <= now:
                    fire = following
                entry.next_fire = following
                fires.append(Fire(job, "schedule", 1, fire))
            if entry.retry_at is not None and entry.retry_at <= now:
                fires.append(Fire(job, "retry", entry.retry_attempt, entry.retry_at))
                entry.retry_at = None
        return fires

    def retry(self, job_name: str, *, attempt: int, exit_code: int, now: datetime) -> datetime | None:
        """After failed attempt ``attempt`` ending with ``exit_code``: when the next attempt runs,
        or None (not retryable, no retries left, the job is gone)."""
        entry = self._entries.get(job_name)
        if entry is None:
            return None
        timing = entry.job.timing
        if not jobtiming.retryable(exit_code) or attempt > timing.retries:
            return None
        entry.retry_at = now + jobtiming.retry_delay(attempt, timing)
        entry.retry_attempt = attempt + 1
        return entry.retry_at

    def clear_retry(self, job_name: str) -> None:
        entry = self._entries.get(job_name)
        if entry is not None:
            entry.retry_at = None
