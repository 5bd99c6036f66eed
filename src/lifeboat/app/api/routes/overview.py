"""``GET /api/v1/overview``: the dashboard's first page in one answer — per source, the newest
restorable point and its age against the RPO, the last drill's RTO against the RTO, green /
amber / red with the reasons and what to do, the last backup, verify and drill."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response

from lifeboat.app.api.auth import Viewer
from lifeboat.app.api.read_models import Overview, OverviewRepository, OverviewSource
from lifeboat.app.api.reads import ReadView
from lifeboat.app.api.routes.readkit import Reads, age, backup, color, jobs_of, not_ok, objective, recorded

if TYPE_CHECKING:
    from lifeboat.app.observability.metrics import JobStat
    from lifeboat.operations.health import HealthReport

router = APIRouter(prefix="/api/v1", tags=["read"])
FRESH = 1.0  # seconds an answer is served again as it is (its ages are at most this much behind)


class _Memo:
    """The last answer's bytes and what it was made of: the page is asked for by every open
    dashboard every few seconds, and nothing changes between two health reports but the ages."""

    def __init__(self) -> None:
        self.key: Any = None
        self.at = 0.0
        self.body = b""
        self.guard = threading.Lock()


@router.get("/overview", summary="Every source's recoverability at a glance", response_model=Overview)
def overview(request: Request, view: Reads, _: Viewer) -> Response:
    report = view.health()
    stats = view.jobs()
    key = (id(report), tuple((s.job, s.last_status, s.last_run, s.runs_total) for s in stats))
    memo: _Memo | None = getattr(request.app.state, "overview_memo", None)
    if memo is None:
        memo = request.app.state.overview_memo = _Memo()
    with memo.guard:
        if memo.key == key and time.monotonic() - memo.at < FRESH:
            return Response(memo.body, media_type="application/json")
    body = build(view, report, stats).model_dump_json().encode()
    with memo.guard:
        memo.key, memo.at, memo.body = key, time.monotonic(), body
    return Response(body, media_type="application/json")


def build(view: ReadView, report: HealthReport, stats: list[JobStat]) -> Overview:
    """The overview of ``report`` (the newest health report) and the jobs' ``stats``."""
    config = view.config()
    now = datetime.now(UTC)
    sources = []
    for source in report.sources:
        reasons, actions = not_ok(source.checks)
        sources.append(
            OverviewSource(
                name=source.name,
                kind=source.kind,
                configured=source.configured,
                state=color(source.state),
                health=source.state.name,  # type: ignore[arg-type]
                reasons=reasons,
                actions=actions,
                newest_restorable=source.newest_restorable,
                age_seconds=age(source.newest_restorable, now),
                rpo_seconds=source.rpo.total_seconds() if source.rpo is not None else None,
                rto_seconds=objective(config.sources.get(source.name), "rto"),
                oldest_restorable=source.oldest_restorable,
                snapshots=source.snapshots,
                last_backup=backup(source.last_backup, now),
                last_verify=recorded(source.recorded.get("verify"), now),
                last_drill=recorded(source.recorded.get("drill"), now),
                jobs=jobs_of(source.name, stats),
            )
        )
    repo = report.repository
    repo_reasons, repo_actions = not_ok(repo.checks)
    return Overview(
        state=color(report.state),
        health=report.state.name,  # type: ignore[arg-type]
        headline=report.headline(),
        checked=report.time,
        age_seconds=round((now - report.time).total_seconds(), 3),
        repository=OverviewRepository(
            location=repo.location,
            reachable=repo.reachable,
            state=color(repo.state),
            health=repo.state.name,  # type: ignore[arg-type]
            snapshots=repo.snapshots,
            data_bytes=repo.data_bytes,
            free_bytes=repo.free_bytes,
            size_bytes=repo.size_bytes,
            reasons=repo_reasons,
            actions=repo_actions,
        ),
        sources=sources,
        running=sorted(s.job for s in stats if s.last_status == "running"),
    )
