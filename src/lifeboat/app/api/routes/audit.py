"""``GET /api/v1/audit`` (admin only): the audit log's entries (docs/audit.md), as
``lifeboat --json audit show`` lists them — oldest first, the newest ``limit``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from lifeboat.app.api.auth import Admin
from lifeboat.app.api.problems import Problem
from lifeboat.app.api.read_models import AuditList
from lifeboat.app.api.routes.readkit import Reads
from lifeboat.errors import ExitCode

router = APIRouter(prefix="/api/v1", tags=["read"])


@router.get("/audit", summary="The audit log (admin)")
def audit(
    view: Reads,
    _: Admin,
    since: Annotated[
        str | None,
        Query(
            description="Only entries from this time (ISO 8601; without a zone, the daemon's local time)",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10000, description="At most this many, the newest")] = 100,
) -> AuditList:
    entries = view.audit_entries()
    if since is not None:
        start = _moment(since)

        def after(entry: dict[str, Any]) -> bool:
            try:
                return datetime.fromisoformat(str(entry.get("time"))) >= start
            except (ValueError, TypeError):
                return False

        entries = [e for e in entries if after(e)]
    return AuditList(entries=entries[-limit:])


def _moment(text: str) -> datetime:
    """An ISO 8601 / RFC 3339 time (a leap second read as the second before); 422 for anything else
    (a number is not taken for a Unix time)."""
    cleaned = text.strip().upper()
    try:
        if cleaned[10:11] != "T":
            raise ValueError("a date and a time")
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        try:
            if cleaned[10:11] != "T":
                raise ValueError("a date and a time") from None
            moment = datetime.fromisoformat(cleaned.replace(":60", ":59", 1))
        except ValueError:
            raise Problem(
                422,
                f"since: {text[:40]!r} is not a time",
                hint="an ISO 8601 time, e.g. 2026-11-30T08:00:00Z",
                exit_code=int(ExitCode.USAGE),
                kind="invalid-request",
            ) from None
    if moment.tzinfo is not None:
        return moment
    try:
        return moment.astimezone()  # the daemon's local time
    except (OverflowError, ValueError, OSError):
        return moment.replace(tzinfo=UTC)
