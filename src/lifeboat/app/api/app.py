"""The FastAPI application of ``lifeboat serve``: built by :func:`create_app` from a view of
the running daemon, nothing global, so tests and the API (issue 13) add routes to one app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from lifeboat.app.api.reads import ReadView
from lifeboat.app.api.tokens import TokenStore


class DaemonView(Protocol):
    """What the HTTP interface reads of the daemon."""

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """(alive, details): alive when the scheduler loop ticked recently."""
        ...

    def metrics(self) -> bytes:
        """The Prometheus text exposition of the daemon's metrics."""
        ...

    def api_tokens(self) -> TokenStore:
        """The API's tokens (``<state dir>/api-tokens.json``)."""
        ...

    def audit_api_call(self, token: str, action: str, arguments: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        """Append a mutating API call to the audit log (raises AuditError when it cannot)."""
        ...

    def audit_ready(self) -> None:
        """Raise AuditError when ``audit.required`` is set and the audit log cannot be written."""
        ...

    def api_error(self, message: str, error: Exception) -> None:
        """Log a fault of the API that its caller does not see (an audit entry not written)."""
        ...

    def reads(self) -> ReadView:
        """What the read resources (app/api/routes/) read of the daemon."""
        ...


PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENAPI_URL = "/api/openapi.json"


def create_app(daemon: DaemonView) -> FastAPI:
    """The daemon's app: ``GET /healthz`` (200 while the scheduler loop ticks, else 503),
    ``GET /metrics`` (Prometheus text format), and the API under ``/api/v1`` (docs/api.md):
    bearer tokens by role, problem JSON for every error, the audit of every mutating call,
    browser safety (security headers, no cross-site state changes)."""
    from lifeboat import __version__
    from lifeboat.app.api import auth, dashboard, problems, schema, token_routes
    from lifeboat.app.api.audit import AuditCalls
    from lifeboat.app.api.routes import jobs
    from lifeboat.app.api.security import BrowserSafety

    app = FastAPI(
        title="Lifeboat",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_URL,
        description="The API of `lifeboat serve` (docs/api.md). Every /api/v1 endpoint needs a bearer token.",
    )
    app.state.tokens = daemon.api_tokens()
    app.state.report_error = daemon.api_error
    app.state.audit_ready = daemon.audit_ready
    problems.install(app)
    app.add_middleware(AuditCalls, write=daemon.audit_api_call, on_error=lambda e: daemon.api_error("audit", e))
    app.add_middleware(BrowserSafety)  # outermost: its headers are on every answer, refusals included

    @app.get(
        "/healthz",
        tags=["daemon"],
        responses={200: {"description": "the scheduler loop ticks"}, 503: {"description": "it stalled"}},
    )
    def healthz() -> JSONResponse:
        alive, details = daemon.liveness()
        return JSONResponse({"status": "ok" if alive else "stalled", **details}, status_code=200 if alive else 503)

    @app.get(
        "/metrics",
        tags=["daemon"],
        response_class=Response,
        responses={
            200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
        },
    )
    def metrics() -> Response:
        return Response(daemon.metrics(), media_type=PROMETHEUS_TEXT)

    app.include_router(auth.router)
    app.include_router(token_routes.router)
    _read_routes(app, daemon)
    app.state.jobs = daemon  # the jobs' endpoints' view of it (routes/jobs.py JobsDesk)
    app.include_router(jobs.router)
    dashboard.install(app)
    schema.install(app)
    return app


def _read_routes(app: FastAPI, daemon: DaemonView) -> None:
    """The read resources (docs/api.md "Resources"), one router per area."""
    from lifeboat.app.api.routes import audit, health, overview, postgres, records, repository, snapshots, sources

    app.state.daemon = daemon  # its reads() is asked for at the first request (app/api/routes/readkit.py)
    for area in (overview, sources, snapshots, postgres, records, repository, health, audit):
        app.include_router(area.router)
