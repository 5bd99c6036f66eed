"""The FastAPI application of ``lifeboat serve``: built by :func:`create_app` from a view of
the running daemon, nothing global, so tests and the API (issue 13) add routes to one app."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response


class DaemonView(Protocol):
    """What the HTTP interface reads of the daemon."""

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """(alive, details): alive when the scheduler loop ticked recently."""
        ...

    def metrics(self) -> bytes:
        """The Prometheus text exposition of the daemon's metrics."""
        ...


PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def create_app(daemon: DaemonView) -> FastAPI:
    """The daemon's app: ``GET /healthz`` (200 while the scheduler loop ticks, else 503) and
    ``GET /metrics`` (Prometheus text format)."""
    from lifeboat import __version__
    from lifeboat.app.api import dashboard

    app = FastAPI(title="Lifeboat", version=__version__, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        alive, details = daemon.liveness()
        return JSONResponse({"status": "ok" if alive else "stalled", **details}, status_code=200 if alive else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(daemon.metrics(), media_type=PROMETHEUS_TEXT)

    dashboard.install(app)
    return app
