"""What the daemon answers when asked to act (the API's jobs and actions, docs/api.md): the
errors of a trigger or a cancel, and how a job is described to a client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lifeboat.errors import ExitCode, LifeboatError, UsageError


class JobBusy(LifeboatError):
    """The job already runs or waits for a slot: the same job never runs twice at once."""

    exit_code = ExitCode.LOCKED
    default_hint = "wait for its run to end, or cancel it (POST /api/v1/runs/{id}/cancel), then ask again"

    def __init__(self, message: str, *, run_id: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.run_id = run_id


class DaemonStopping(LifeboatError):
    """The daemon is stopping: it starts nothing more."""

    exit_code = ExitCode.INTERRUPTED
    default_hint = "ask again once the daemon runs again"


class RunNotFound(UsageError):
    """No run of that id in the catalog, nor waiting in this daemon."""

    default_hint = "GET /api/v1/runs lists the runs and their ids"


class RunNotCancellable(LifeboatError):
    """The run cannot be cancelled here: it ended, or it runs on another host."""

    default_hint = "only a run that is running or waiting on this daemon's host can be cancelled"


@dataclass(frozen=True)
class RunBrief:
    """A run in a job's description: its id, status and times."""

    id: str
    status: str
    started: datetime | None
    finished: datetime | None
    trigger: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "trigger": self.trigger,
            "started": _time(self.started),
            "finished": _time(self.finished),
        }


@dataclass(frozen=True)
class JobInfo:
    """One scheduled job as ``GET /api/v1/jobs`` shows it."""

    name: str
    kind: str
    target: str
    schedule: str  # "cron 0 2 * * *", "every 6h"
    time_zone: str
    priority: int
    timeout_seconds: float | None
    next_run: datetime | None
    last_run: RunBrief | None
    current: RunBrief | None  # running now or waiting for a slot

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "target": self.target,
            "schedule": self.schedule,
            "time_zone": self.time_zone,
            "priority": self.priority,
            "timeout_seconds": self.timeout_seconds,
            "next_run": _time(self.next_run),
            "last_run": self.last_run.to_json() if self.last_run is not None else None,
            "running": self.current is not None and self.current.status == "running",
            "current_run": self.current.to_json() if self.current is not None else None,
        }


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None
