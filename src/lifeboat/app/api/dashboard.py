"""The web dashboard's assets, served by the daemon's app: ``GET /`` is the page (one small HTML
shell), ``/static/`` its stylesheet, scripts and icon — all shipped in the package, nothing from
the internet. The page is public (it holds no data); the data comes from the API, which asks for
a token on every call."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

STATIC = Path(__file__).with_name("static")

# The shell and the scripts change with each release: the browser asks again (a 304 when unchanged).
_REVALIDATE = {"Cache-Control": "no-cache"}


class _Assets(StaticFiles):
    """StaticFiles whose answers the browser revalidates (ETag / Last-Modified) before use."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_REVALIDATE)
        return response


def install(app: FastAPI) -> None:
    """Serve the dashboard on ``app``: ``/`` and ``/static/…``."""

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=_REVALIDATE)

    app.mount("/static", _Assets(directory=STATIC, follow_symlink=False), name="static")
