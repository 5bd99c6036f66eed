"""``GET /api/v1/sources`` and ``GET /api/v1/sources/{name}`` (with its health checks): every
configured source and every source the repository holds backups of."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from lifeboat.app.api.auth import Viewer
from lifeboat.app.api.read_models import SourceDetail, SourceList, SourceOut
from lifeboat.app.api.routes.readkit import (
    NOT_FOUND,
    Reads,
    backup,
    check_out,
    color,
    find_source,
    jobs_of,
    objective,
    recorded,
)
from lifeboat.errors import ObjectNotFound

router = APIRouter(prefix="/api/v1", tags=["read"])


def _fields(source: Any, config: Any, retention: Any) -> dict[str, Any]:
    return {
        "name": source.name,
        "kind": source.kind,
        "configured": source.configured,
        "repository": getattr(config, "repository", None),
        "state": color(source.state),
        "health": source.state.name,
        "rpo_seconds": source.rpo.total_seconds() if source.rpo is not None else None,
        "rto_seconds": objective(config, "rto"),
        "newest_restorable": source.newest_restorable,
        "oldest_restorable": source.oldest_restorable,
        "snapshots": source.snapshots,
        "tags": list(getattr(config, "tags", None) or ()),
        "retention": retention.describe() if retention is not None else None,
    }


@router.get("/sources", summary="Every source: kind, objectives, newest restorable point, state")
def sources(view: Reads, _: Viewer) -> SourceList:
    report, config = view.health(), view.config()
    return SourceList(
        sources=[
            SourceOut.model_validate(
                _fields(s, config.sources.get(s.name), config.retention_for(s.name) if s.configured else None)
            )
            for s in report.sources
        ]
    )


@router.get("/sources/{name}", summary="One source with its health checks", responses=NOT_FOUND)
def source(name: str, view: Reads, _: Viewer) -> SourceDetail:
    report, config = view.health(), view.config()
    found = find_source(report.sources, name)
    if found is None:
        raise ObjectNotFound(
            f"no source {name!r}: not configured, and the repository holds no backups of it",
            hint="GET /api/v1/sources lists them",
        )
    now = datetime.now(UTC)
    entry = config.sources.get(name)
    return SourceDetail.model_validate(
        {
            **_fields(found, entry, config.retention_for(name) if found.configured else None),
            "checks": [check_out(c) for c in found.checks],
            "wal": found.wal,
            "cluster": found.cluster.to_json() if found.cluster else None,
            "last_backup": backup(found.last_backup, now),
            "last_verify": recorded(found.recorded.get("verify"), now),
            "last_drill": recorded(found.recorded.get("drill"), now),
            "jobs": jobs_of(name, view.jobs()),
        }
    )
