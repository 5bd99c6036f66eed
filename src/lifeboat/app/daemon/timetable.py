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
    """A run to ask for: the job, why (schedule, catch-up, retry), which attempt, the scheduled
    time it answers and how many scheduled times were missed before it."""

    job: Any  # config/jobs.py ScheduledJob
    trigger: str
    attempt: int
    fire: datetime
    missed: int = 0


@dataclass
class _Entry:
    job: Any
    last_fire: datetime | None
    next_time: datetime | None = None  # None: ask core/jobtiming.due at the next look
    retry_at: datetime | None = None
    retry_attempt: int = 0


class Timetable:
    """The next times of a set of jobs on ``host``; the decisions are core/jobtiming.due's."""

    def __init__(
        self,
        jobs: Iterable[Any],
        *,
        host: str,
        now: datetime,
        last_fire: Callable[[str], datetime | None],
    ) -> None:
        self._host = host
        self._start = now
        self._entries: dict[str, _Entry] = {}
        self.handled: dict[str, datetime] = {}  # fires decided since the caller last took them
        self._pending: list[Fire] = []  # fires decided at a look the caller has not taken yet
        self.replace(jobs, now=now, last_fire=last_fire)

    def replace(self, jobs: Iterable[Any], *, now: datetime, last_fire: Callable[[str], datetime | None]) -> None:
        """Take ``jobs`` as the new set (a reload): a job whose timing is unchanged keeps its next
        time and pending retry; a new or rescheduled one starts from its last fire."""
        jobs = list(jobs)
        kept = {j.name for j in jobs if (old := self._entries.get(j.name)) is not None and old.job.timing == j.timing}
        fired = {j.name: last_fire(j.name) for j in jobs if j.name not in kept}  # may raise: nothing changed yet
        entries: dict[str, _Entry] = {}
        for job in jobs:
            if job.name in kept:
                entries[job.name] = self._entries[job.name]
                entries[job.name].job = job
            else:
                entries[job.name] = _Entry(job, fired[job.name])
        self._entries = entries
        self._look(now)

    def _look(self, now: datetime) -> list[Fire]:
        fires: list[Fire] = []
        for entry in self._entries.values():
            if entry.next_time is not None and entry.next_time > now:
                continue
            job = entry.job
            verdict = jobtiming.due(job.timing, entry.last_fire, now, host=self._host, job=job.name, start=self._start)
            if verdict.handled is not None:
                entry.last_fire = verdict.handled
                self.handled[job.name] = verdict.handled
            if verdict.fire_time is not None:
                fires.append(Fire(job, verdict.trigger or "schedule", 1, verdict.fire_time, verdict.missed))
            entry.next_time = verdict.next_time
        self._pending += fires
        return fires

    @property
    def jobs(self) -> list[Any]:
        return [entry.job for entry in self._entries.values()]

    def next_times(self) -> dict[str, datetime]:
        """Each job's next scheduled time."""
        return {name: entry.next_time for name, entry in self._entries.items() if entry.next_time is not None}

    def wake_at(self) -> datetime | None:
        """The earliest time something is due (None: no jobs)."""
        times = [entry.next_time for entry in self._entries.values() if entry.next_time is not None]
        times += [entry.retry_at for entry in self._entries.values() if entry.retry_at is not None]
        if self._pending:
            return min(fire.fire for fire in self._pending)
        return min(times, default=None)

    def due(self, now: datetime) -> list[Fire]:
        """What is due at ``now``; each scheduled time is handed out once (a job whose times
        passed while the daemon was down or busy: once, or not at all with ``missed: skip``)."""
        self._look(now)
        fires, self._pending = self._pending, []
        for entry in self._entries.values():
            if entry.retry_at is not None and entry.retry_at <= now:
                fires.append(Fire(entry.job, "retry", entry.retry_attempt, entry.retry_at))
                entry.retry_at = None
        return fires

    def take_handled(self) -> dict[str, datetime]:
        """The last fire decided for each job since the last call (to keep in the catalog)."""
        handled, self.handled = self.handled, {}
        return handled

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
