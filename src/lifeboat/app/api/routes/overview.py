"""``GET /api/v1/overview``: the dashboard's first page in one answer — per source, the newest
restorable point and its age against the RPO, the last drill's RTO against the RTO, green /
amber / red with the reasons and what to do, the last backup, verify and drill."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from lifeboat.app.api.auth import Viewer
from lifeboat.app.api.read_models import Overview, OverviewRepository, OverviewSource
from lifeboat.app.api.routes.readkit import Reads, age, backup, color, jobs_of, not_ok, objective, recorded

router = APIRouter(prefix="/api/v1", tags=["read"])


@router.get("/overview", summary="Every source's recoverability at a glance")
def overview(view: Reads, _: Viewer) -> Overview:
    report = view.health()
    config = view.config()
    stats = view.jobs()
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
