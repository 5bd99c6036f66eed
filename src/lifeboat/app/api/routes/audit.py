"""``GET /api/v1/audit`` (admin only): the audit log's entries (docs/audit.md), as
``lifeboat --json audit show`` lists them — oldest first, the newest ``limit``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from lifeboat.app.api.auth import Admin
from lifeboat.app.api.read_models import AuditList
from lifeboat.app.api.routes.readkit import Reads

router = APIRouter(prefix="/api/v1", tags=["read"])


@router.get("/audit", summary="The audit log (admin)")
def audit(
    view: Reads,
    _: Admin,
    since: Annotated[datetime | None, Query(description="Only entries from this time (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=10000, description="At most this many, the newest")] = 100,
) -> AuditList:
    entries = view.audit_entries()
    if since is not None:
        start = since if since.tzinfo is not None else since.astimezone()

        def after(entry: dict[str, Any]) -> bool:
            try:
                return datetime.fromisoformat(str(entry.get("time"))) >= start
            except (ValueError, TypeError):
                return False

        entries = [e for e in entries if after(e)]
    return AuditList(entries=entries[-limit:])
