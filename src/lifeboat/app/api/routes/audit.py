"""``GET /api/v1/audit`` (admin only): the audit log's entries (docs/audit.md), as
``lifeboat --json audit show`` lists them — oldest first, the newest ``limit``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from lifeboat.app.api.auth import Admin
from lifeboat.app.api.read_models import AuditList
from lifeboat.app.api.routes.readkit import Reads

router = APIRouter(prefix="/api/v1", tags=["read"])


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _iso_time(value: Any) -> Any:
    """Only an ISO 8601 time, as the schema says (``format: date-time``): pydantic alone would
    also take a number as a Unix time (found by tests/api/test_fuzz.py)."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        raise ValueError("an ISO 8601 time is needed, e.g. 2026-11-30T10:00:00Z")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_time)]


@router.get("/audit", summary="The audit log (admin)")
def audit(
    view: Reads,
    _: Admin,
    since: Annotated[IsoTime | None, Query(description="Only entries from this time (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=10000, description="At most this many, the newest")] = 100,
) -> AuditList:
    entries = view.audit_entries()
    if since is not None:
        start = since if since.tzinfo is not None else _local(since)

        def after(entry: dict[str, Any]) -> bool:
            try:
                return datetime.fromisoformat(str(entry.get("time"))) >= start
            except (ValueError, TypeError):
                return False

        entries = [e for e in entries if after(e)]
    return AuditList(entries=entries[-limit:])


def _local(moment: datetime) -> datetime:
    """A time without a zone, read as the daemon's local time (UTC at the ends of the calendar)."""
    try:
        return moment.astimezone()
    except (OverflowError, ValueError, OSError):
        return moment.replace(tzinfo=UTC)
