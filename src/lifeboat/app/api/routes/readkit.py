"""What the read routes share: the daemon's :class:`ReadView` as a dependency, and the
conversions of health facts into the documents of app/api/read_models.py."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from lifeboat.app.api.read_models import BackupOut, CheckOut, Color, JobOut, RecordedOut
from lifeboat.app.api.reads import ReadView

if TYPE_CHECKING:
    from lifeboat.app.observability.metrics import JobStat
    from lifeboat.core.health import Check, RecordedResult, State
    from lifeboat.core.snapshot import Snapshot
    from lifeboat.operations.health import SourceHealth

# The problem documents a read route may answer with, for the OpenAPI schema.
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such thing (problem JSON)"}}


def reads(request: Request) -> ReadView:
    """The daemon's read view (create_app puts the daemon in the app's state)."""
    view: ReadView = request.app.state.daemon.reads()
    return view


Reads = Annotated[ReadView, Depends(reads)]


def color(state: State) -> Color:
    """green when OK; red when CRITICAL (act now); amber for a warning or what could not be looked at."""
    from lifeboat.core.health import State

    if state is State.OK:
        return "green"
    return "red" if state is State.CRITICAL else "amber"


def check_out(check: Check) -> CheckOut:
    return CheckOut.model_validate(check.to_json())


def not_ok(checks: list[Check]) -> tuple[list[str], list[str]]:
    """(reasons, actions): each check that is not OK, the worst first, and what to do for it."""
    ranked = sorted((c for c in checks if c.state.name != "OK"), key=lambda c: -_rank(c.state))
    reasons = [f"{c.name}: {c.summary}" for c in ranked]
    actions = [f"{c.name}: {c.hint}" for c in ranked if c.hint]
    return reasons, actions


def _rank(state: State) -> int:
    return {"OK": 0, "UNKNOWN": 1, "WARNING": 2, "CRITICAL": 3}[state.name]


def age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 3)


def recorded(result: RecordedResult | None, now: datetime) -> RecordedOut | None:
    if result is None:
        return None
    figures = result.figures
    return RecordedOut(
        time=result.time,
        ok=result.ok,
        age_seconds=round((now - result.time).total_seconds(), 3),
        reason=result.summary,
        rto_seconds=figures.get("rto_seconds"),
        rto_objective_seconds=figures.get("rto_objective_seconds"),
        achieved_rpo_seconds=figures.get("achieved_rpo_seconds"),
        rpo_objective_seconds=figures.get("rpo_objective_seconds"),
    )


def _number(value: Any) -> Any:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def backup(snapshot: Snapshot | None, now: datetime) -> BackupOut | None:
    if snapshot is None:
        return None
    summary = snapshot.summary
    total, stored = _number(summary.get("bytes_total")), _number(summary.get("bytes_stored"))
    return BackupOut(
        snapshot=snapshot.id,
        time=snapshot.time,
        age_seconds=round((now - snapshot.time).total_seconds(), 3),
        duration_seconds=_number(summary.get("duration_seconds")),
        bytes_total=int(total) if total is not None else None,
        bytes_stored=int(stored) if stored is not None else None,
    )


def job_out(stat: JobStat) -> JobOut:
    return JobOut(
        job=stat.job,
        kind=stat.kind,
        target=stat.target,
        running=stat.last_status == "running",
        last_run=stat.last_run,
        last_status=stat.last_status,
        last_success=stat.last_success,
        last_duration_seconds=stat.last_duration_seconds,
        runs_total=stat.runs_total,
        failures_total=stat.failures_total,
    )


def jobs_of(source: str, stats: list[JobStat]) -> list[JobOut]:
    """The jobs whose target is ``source`` (backup, verify, drill, retention)."""
    return [job_out(s) for s in sorted(stats, key=lambda s: s.job) if s.target == source]


def objective(config: Any, key: str) -> float | None:
    """A source's configured ``rpo``/``rto`` in seconds."""
    from lifeboat.core.units import parse_duration

    text = getattr(config, key, None)
    return parse_duration(text).total_seconds() if text else None


def find_source(sources: list[SourceHealth], name: str) -> SourceHealth | None:
    return next((s for s in sources if s.name == name), None)
