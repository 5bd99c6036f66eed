"""``GET /api/v1/verify`` and ``GET /api/v1/drills``: the results recorded in the repository
(``lifeboat records``), newest first; the drills with each source's RTO trend."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from lifeboat.app.api.auth import Viewer
from lifeboat.app.api.read_models import DrillList, DrillOut, DrillTrend, TrendPoint, VerifyList, VerifyOut
from lifeboat.app.api.routes.readkit import Reads
from lifeboat.core.records import DRILL, VERIFY

router = APIRouter(prefix="/api/v1", tags=["read"])

SourceQuery = Annotated[str | None, Query(description="Only this source's")]
LimitQuery = Annotated[int, Query(ge=1, le=1000, description="At most this many, the newest")]


@router.get("/verify", summary="Recorded verify results, newest first")
def verify(view: Reads, _: Viewer, source: SourceQuery = None, limit: LimitQuery = 100) -> VerifyList:
    chosen = [r for r in view.records() if r.kind == VERIFY and (source is None or r.source == source)]
    return VerifyList(
        results=[
            VerifyOut(id=r.id, time=r.time, source=r.source, ok=r.ok, hostname=r.hostname, summary=r.summary)
            for r in chosen[:limit]
        ]
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@router.get("/drills", summary="Recorded drills, newest first, and each source's RTO trend")
def drills(view: Reads, _: Viewer, source: SourceQuery = None, limit: LimitQuery = 100) -> DrillList:
    chosen = [r for r in view.records() if r.kind == DRILL and (source is None or r.source == source)][:limit]
    out = []
    for record in chosen:
        summary = record.summary
        problems = summary.get("problems")
        out.append(
            DrillOut(
                id=record.id,
                time=record.time,
                source=record.source,
                ok=record.ok,
                status=_text(summary.get("status")) or ("passed" if record.ok else "failed"),
                target=_text(summary.get("target")),
                snapshot=_text(summary.get("snapshot")),
                rto_seconds=_number(summary.get("rto_seconds")),
                rto_objective_seconds=_number(summary.get("rto_objective_seconds")),
                achieved_rpo_seconds=_number(summary.get("achieved_rpo_seconds")),
                rpo_objective_seconds=_number(summary.get("rpo_objective_seconds")),
                seconds=_number(summary.get("seconds")),
                problems=[str(p) for p in problems] if isinstance(problems, list) else [],
                hostname=record.hostname,
            )
        )
    trend: dict[str, DrillTrend] = {}
    for drill in reversed(out):  # oldest first
        line = trend.setdefault(drill.source, DrillTrend(source=drill.source, rto_objective_seconds=None, points=[]))
        line.points.append(TrendPoint(time=drill.time, rto_seconds=drill.rto_seconds, ok=drill.ok))
        if drill.rto_objective_seconds is not None:
            line.rto_objective_seconds = drill.rto_objective_seconds  # the newest drill's objective
    return DrillList(drills=out, trend=[trend[name] for name in sorted(trend)])
