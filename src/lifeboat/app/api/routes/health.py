"""``GET /api/v1/health`` (the document of ``lifeboat health --json``) and
``GET /api/v1/health/nagios`` (its ``--nagios`` line, text/plain): the daemon's newest
health report, at most half a minute old."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from lifeboat.app.api.auth import Viewer
from lifeboat.app.api.read_models import HealthOut
from lifeboat.app.api.routes.readkit import Reads

router = APIRouter(prefix="/api/v1", tags=["read"])


@router.get("/health", summary="The health report, as 'lifeboat health --json'")
def health(view: Reads, _: Viewer) -> HealthOut:
    return HealthOut.model_validate(view.health().to_json())


@router.get(
    "/health/nagios",
    summary="The health report as one Nagios status line, as 'lifeboat health --nagios'",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def nagios(view: Reads, _: Viewer) -> PlainTextResponse:
    from lifeboat.app.observability.nagios import status_line

    return PlainTextResponse(status_line(view.health()) + "\n")
