"""Jobs and actions (docs/api.md "Jobs and actions"): the scheduled jobs, the runs of every host
(the catalog), a run's log as server-sent events, and the actions — run a job now, cancel a
run, start a source's drill, show a restore plan. Restores are not here: a restore over a live
system stays on the command line.

Triggered runs go through the daemon's runner like scheduled ones (priorities, never two runs
of one job at once, timeouts) and are recorded with the trigger ``api``; the token's name is
the run's actor in the audit log, beside the entry of the call itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from lifeboat.app.api.audit import audit_as
from lifeboat.app.api.auth import Admin, Operator, Principal, Viewer
from lifeboat.app.api.problems import Problem
from lifeboat.app.api.tokens import Role
from lifeboat.app.daemon.actions import DaemonStopping, JobBusy, JobInfo, RunNotCancellable, RunNotFound
from lifeboat.app.daemon.live import LiveEvent, LiveRuns, RunEnded, Subscription
from lifeboat.config.jobs import KINDS, UnknownJob
from lifeboat.errors import ExitCode

# The kinds of job an operator may run; the others (retention, prune, copy) need an admin.
OPERATOR_KINDS = frozenset({"backup", "verify", "drill", "check"})
STATUSES = ("waiting", "running", "succeeded", "failed", "cancelled", "timed-out", "interrupted")
# No name or id holds a NUL, and PostgreSQL refuses one in a text parameter (a catalog there
# answered 500 to ?host=%00, found by tests/api/test_fuzz.py): refused as a 422 instead.
NO_NUL = r"^[^\x00]*$"
# One server-sent event of a run's log: its data is a JSON document (the run, a line, the end).
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["run", "log", "dropped", "end"]},
        "data": {"type": "string", "description": "a JSON document"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}
FOLLOW_POLL = 2.0  # seconds between two reads of the catalog for a run of another host
KEEPALIVE = 15.0  # seconds between two SSE comments on a quiet stream

router = APIRouter(prefix="/api/v1", tags=["jobs"])


class JobsDesk(Protocol):
    """What these endpoints need of the daemon (app/daemon/service.py's issue-13 section)."""

    @property
    def live(self) -> LiveRuns: ...
    @property
    def host(self) -> str: ...
    def jobs(self) -> list[JobInfo]: ...
    def runs(
        self, *, job: str | None = None, status: str | None = None, host: str | None = None, limit: int = 100
    ) -> list[Any]: ...
    def find_run(self, run_id: str) -> Any: ...
    def run_events(self, run_id: str) -> list[Any]: ...
    def trigger(self, job: str, *, actor: str | None, trigger: str = "api") -> str: ...
    def cancel(self, run_id: str, *, actor: str | None) -> str: ...
    def restore_plan(self, *, snapshot: str, target: str, source: str | None) -> dict[str, Any]: ...


def desk(request: Request) -> JobsDesk:
    found: JobsDesk = request.app.state.jobs
    return found


Desk = Annotated[JobsDesk, Depends(desk)]


# --- the answers ------------------------------------------------------------------------------------
class RunBriefOut(BaseModel):
    id: str
    status: str
    trigger: str
    started: datetime | None
    finished: datetime | None


class JobOut(BaseModel):
    """A scheduled job."""

    name: str = Field(description="<kind>:<target>, e.g. backup:db")
    kind: str
    target: str
    schedule: str = Field(description="its timing: 'cron 0 2 * * *' or 'every 6h'")
    time_zone: str
    priority: int
    timeout_seconds: float | None
    next_run: datetime | None
    last_run: RunBriefOut | None = Field(description="this host's last finished run")
    running: bool
    current_run: RunBriefOut | None = Field(description="the run in progress or waiting for a slot")
    role_to_run: Literal["operator", "admin"]


class JobList(BaseModel):
    jobs: list[JobOut]


class RunOut(BaseModel):
    """A run of a job (one attempt), as the catalog records it; ``waiting`` while it waits for a slot."""

    id: str
    host: str
    job: str
    kind: str
    target: str
    trigger: str
    attempt: int
    status: str
    started: datetime | None
    finished: datetime | None
    duration_seconds: float | None
    exit_code: int | None
    error: str | None
    bytes_read: int | None
    bytes_added: int | None


class RunDetail(RunOut):
    summary: dict[str, Any] = Field(description="what the operation reported (its --json result)")


class RunList(BaseModel):
    runs: list[RunOut]


class Accepted(BaseModel):
    """A run asked for: it runs when a slot is free (at once when one is)."""

    run_id: str
    job: str
    status: Literal["accepted"] = "accepted"
    run: str = Field(description="where to follow it: GET this path, and its /log")


class Cancelling(BaseModel):
    run_id: str
    status: Literal["cancelling", "cancelled"] = Field(
        description="cancelling: it stops at its next safe point and is recorded cancelled; cancelled: it was "
        "waiting for a slot and is recorded cancelled"
    )


class DrillAsked(BaseModel):
    source: str = Field(min_length=1, max_length=200, pattern=NO_NUL, description="the configured source to drill")


PROBLEM: dict[str, Any] = {"description": "problem JSON (RFC 9457)", "content": {"application/problem+json": {}}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: PROBLEM}
ACTION_ERRORS: dict[int | str, dict[str, Any]] = {404: PROBLEM, 409: PROBLEM, 503: PROBLEM}


def _run_out(run: Any) -> dict[str, Any]:
    duration = (run.finished - run.started).total_seconds() if run.finished and run.started else None
    return {
        "id": run.id, "host": run.host, "job": run.job, "kind": run.kind, "target": run.target,
        "trigger": run.trigger, "attempt": run.attempt, "status": run.status, "started": run.started,
        "finished": run.finished, "duration_seconds": duration, "exit_code": run.exit_code, "error": run.error,
        "bytes_read": run.bytes_read, "bytes_added": run.bytes_added,
    }  # fmt: skip


def _not_found(error: RunNotFound | UnknownJob) -> Problem:
    return Problem(404, error.message, hint=error.hint, exit_code=int(error.exit_code), kind="not-found")


def _role_to_run(kind: str) -> Role:
    return Role.OPERATOR if kind in OPERATOR_KINDS else Role.ADMIN


def _may_run(principal: Principal, kind: str, what: str) -> None:
    needed = _role_to_run(kind)
    if principal.role < needed:
        raise Problem(
            403,
            f"the token {principal.name!r} has the role {principal.role.label}; {what} needs {needed.label}",
            kind="forbidden",
            exit_code=int(ExitCode.USAGE),
            hint="an operator runs backups, verifies, drills and checks; retention, prune and copy need an admin",
        )


# --- reading ---------------------------------------------------------------------------------------
@router.get("/jobs", summary="The scheduled jobs: timing, next run, last run, the run in progress")
def jobs(view: Desk, _: Viewer) -> JobList:
    return JobList(
        jobs=[
            JobOut.model_validate({**info.to_json(), "role_to_run": _role_to_run(info.kind).label})
            for info in view.jobs()
        ]
    )


@router.get("/runs", summary="Runs of every host (the catalog), newest first; the runs waiting here first")
def runs(
    view: Desk,
    _: Viewer,
    job: Annotated[
        str | None, Query(max_length=300, pattern=NO_NUL, description="a job's name, e.g. backup:db")
    ] = None,
    status: Annotated[Literal[STATUSES] | None, Query(description="one status")] = None,  # type: ignore[valid-type]
    host: Annotated[str | None, Query(max_length=300, pattern=NO_NUL, description="one host's runs")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RunList:
    found = view.runs(job=job, status=status, host=host, limit=limit)
    return RunList(runs=[RunOut.model_validate(_run_out(run)) for run in found])


RunId = Annotated[str, Path(min_length=1, max_length=100, pattern=NO_NUL, description="a run's id")]


@router.get("/runs/{run_id}", summary="One run with its summary", responses=NOT_FOUND)
def run(run_id: RunId, view: Desk, _: Viewer) -> RunDetail:
    try:
        found = view.find_run(run_id)
    except RunNotFound as exc:
        raise _not_found(exc) from None
    return RunDetail.model_validate({**_run_out(found), "summary": dict(found.summary or {})})


@router.get(
    "/runs/{run_id}/log",
    summary="A run's log as server-sent events: its past events, then live ones until it ends",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "events 'run' (the run), 'log' (one line: seq, at, level, message), 'dropped' (lines "
            "this client was too slow for), then 'end' (status, exit_code, error, finished)",
            # before OpenAPI 3.2 the schema of an event stream describes each event
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        **NOT_FOUND,
    },
)
async def run_log(run_id: RunId, view: Desk, _: Viewer) -> EventSourceResponse:
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()

    def wake() -> None:  # on the publishing job's thread
        loop.call_soon_threadsafe(ready.set)

    subscription = view.live.subscribe(run_id, wake=wake)
    try:
        found = await run_in_threadpool(view.find_run, run_id)
        past = await run_in_threadpool(view.run_events, run_id)
    except RunNotFound as exc:
        subscription.close()
        raise _not_found(exc) from None
    except BaseException:
        subscription.close()
        raise
    here = _here(view, found)  # judged once: subscribed before, an end after this still reaches the subscription
    if not here:
        subscription.close()  # nothing to hear of it here: it ended, or it runs on another host
    return EventSourceResponse(
        _log_stream(view, found, past, subscription, ready, here=here),
        ping=int(KEEPALIVE),
        headers={"Cache-Control": "no-store"},
    )


def _event(name: str, data: dict[str, Any], seq: int | None = None) -> dict[str, str]:
    event = {"event": name, "data": json.dumps(data, default=_json_default)}
    if seq:
        event["id"] = str(seq)
    return event


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(type(value).__name__)


def _log_line(seq: int | None, at: datetime, level: str, message: str) -> dict[str, str]:
    return _event("log", {"seq": seq, "at": at, "level": level, "message": message}, seq)


def _here(view: JobsDesk, run: Any) -> bool:
    """Whether ``run`` waits or runs on this daemon now: its lines come through the live hub. The
    catalog's "running" alone is not enough: a row whose end was never written would be waited
    on for ever."""
    return run.host == view.host and (run.status == "waiting" or view.live.active(run.id))


def _end(run: Any) -> dict[str, str]:
    return _event(
        "end", {"status": run.status, "exit_code": run.exit_code, "error": run.error, "finished": run.finished}
    )


async def _log_stream(
    view: JobsDesk, run: Any, past: list[Any], subscription: Subscription, ready: asyncio.Event, *, here: bool
) -> AsyncIterator[dict[str, str]]:
    """The run, its recorded events, then — for a run running or waiting here — its live ones
    until its end; for a running run of another host, what the catalog gains until it ends."""
    try:
        yield _event("run", _run_out(run))
        seen: set[int] = set()
        for event in past:
            seen.add(event.seq)
            yield _log_line(event.seq, event.at, event.level, event.message)
        if here:
            async for item in _live(subscription, ready, seen):
                yield item
            return
        if run.status == "running":  # another host's run, or one that just ended here: the catalog
            async for item in _follow(view, run.id, seen, mine=run.host == view.host):
                yield item
            return
        yield _end(run)
    finally:
        subscription.close()


async def _live(subscription: Subscription, ready: asyncio.Event, seen: set[int]) -> AsyncIterator[dict[str, str]]:
    while True:
        ready.clear()
        items, dropped = subscription.take()
        if dropped:
            yield _event("dropped", {"count": dropped, "message": f"{dropped} log lines were not sent: too slow"})
        for item in items:
            if isinstance(item, RunEnded):
                yield _end(item)
                return
            if isinstance(item, LiveEvent) and (item.seq is None or item.seq not in seen):
                yield _log_line(item.seq, item.at, item.level, item.message)
        if not items and not dropped:
            await ready.wait()


async def _follow(view: JobsDesk, run_id: str, seen: set[int], *, mine: bool) -> AsyncIterator[dict[str, str]]:
    """What the catalog gains until the run ends. A run of this host that runs nowhere here ends
    after one read: the catalog's row is all there is (a daemon that stopped before writing it)."""
    while True:
        await asyncio.sleep(FOLLOW_POLL)
        run = await run_in_threadpool(view.find_run, run_id)
        for event in await run_in_threadpool(view.run_events, run_id):
            if event.seq not in seen:
                seen.add(event.seq)
                yield _log_line(event.seq, event.at, event.level, event.message)
        if run.status != "running" or (mine and not view.live.active(run_id)):
            yield _end(run)
            return


# --- acting -----------------------------------------------------------------------------------------
def _trigger(request: Request, view: JobsDesk, principal: Principal, name: str) -> Accepted:
    kind = name.partition(":")[0]
    if kind in KINDS:
        _may_run(principal, kind, f"running a {kind} job")
    try:
        run_id = view.trigger(name, actor=principal.name)
    except UnknownJob as exc:
        raise _not_found(exc) from None
    except JobBusy as exc:
        raise Problem(409, exc.message, hint=exc.hint, exit_code=int(exc.exit_code), kind="job-busy") from None
    except DaemonStopping as exc:
        raise Problem(503, exc.message, hint=exc.hint, exit_code=int(exc.exit_code), kind="stopping") from None
    audit_as(request, kind, job=name, run=run_id, trigger="api")
    return Accepted(run_id=run_id, job=name, run=f"/api/v1/runs/{run_id}")


@router.post(
    "/jobs/{name}/run",
    status_code=202,
    summary="Run a job now (operator: backup, verify, drill, check; admin: retention, prune, copy)",
    responses=ACTION_ERRORS,
)
def run_job(
    name: Annotated[str, Path(min_length=3, max_length=300, pattern=NO_NUL, description="<kind>:<target>: backup:db")],
    request: Request,
    view: Desk,
    principal: Operator,
) -> Accepted:
    return _trigger(request, view, principal, name)


@router.post(
    "/drills",
    status_code=202,
    summary="Start the restore drill of a source (its schedule or not)",
    responses=ACTION_ERRORS,
)
def start_drill(asked: DrillAsked, request: Request, view: Desk, principal: Operator) -> Accepted:
    return _trigger(request, view, principal, f"drill:{asked.source}")


@router.post(
    "/runs/{run_id}/cancel",
    status_code=202,
    summary="Cancel a run: it stops at its next safe point (nothing half-written is committed)",
    responses={404: PROBLEM, 409: PROBLEM},
)
def cancel_run(run_id: RunId, request: Request, view: Desk, principal: Operator) -> Cancelling:
    try:
        found = view.find_run(run_id)
        _may_run(principal, found.kind, f"cancelling a {found.kind} run")
        how = view.cancel(run_id, actor=principal.name)
    except RunNotFound as exc:
        raise _not_found(exc) from None
    except RunNotCancellable as exc:
        raise Problem(409, exc.message, hint=exc.hint, exit_code=int(exc.exit_code), kind="not-cancellable") from None
    audit_as(request, "cancel", run=run_id, job=found.job)
    return Cancelling(run_id=run_id, status="cancelling" if how == "running" else "cancelled")


class RestorePlanAsked(BaseModel):
    snapshot: str = Field(
        "latest", min_length=1, max_length=200, pattern=NO_NUL, description="a snapshot id prefix or 'latest'"
    )
    target: str = Field(
        min_length=1, max_length=4096, pattern=NO_NUL, description="an absolute directory of the daemon's host"
    )
    source: str | None = Field(
        None, min_length=1, max_length=200, pattern=NO_NUL, description="'latest' of this source"
    )


class RestorePlanOut(BaseModel):
    feasible: bool = Field(description="false when the restore would be refused: the plan's refusals say why")
    plan: dict[str, Any] = Field(description="as 'lifeboat restore ID --target DIR --plan --json' shows it")
    command: list[str] = Field(description="the command that restores it, to run on the daemon's host")


@router.post(
    "/restore-plans",
    summary="What restoring a snapshot into a directory would do (nothing is written; no restore through the API)",
    responses={400: PROBLEM, 404: PROBLEM},
)
def restore_plan(asked: RestorePlanAsked, request: Request, view: Desk, _: Admin) -> RestorePlanOut:
    audit_as(request, "restore-plan", snapshot=asked.snapshot, target=asked.target, source=asked.source)
    return RestorePlanOut.model_validate(
        view.restore_plan(snapshot=asked.snapshot, target=asked.target, source=asked.source)
    )
