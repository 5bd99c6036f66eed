"""Browser safety for every response (docs/api.md#csrf-and-browsers): security headers, and
state-changing requests from another site refused.

A pure ASGI middleware (no buffering, so server-sent events stream through):

- every response gets ``Content-Security-Policy`` (``default-src 'self'``, ``frame-ancestors
  'none'``), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY``, ``Cross-Origin-Opener-Policy`` / ``-Resource-Policy: same-origin``,
  ``Cache-Control: no-store`` under ``/api/``, and ``Strict-Transport-Security`` over TLS;
- a POST, PUT, PATCH or DELETE whose ``Origin`` is not this server's (its host and port, as
  the ``Host`` header names it), or that a browser marks ``Sec-Fetch-Site: cross-site``, is
  refused with 403 before any route runs. Requests without ``Origin`` (curl, scripts) pass:
  they carry no ambient credentials — the token is never in a cookie.

There is no CORS: no ``Access-Control-Allow-*`` header is ever sent, so another site's script
cannot read an answer either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from lifeboat.app.api.headers import HEADERS, HSTS, NO_STORE
from lifeboat.errors import ExitCode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _default_port(scheme: str) -> int:
    return 443 if scheme in ("https", "wss") else 80


def _host_port(netloc: str, scheme: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(f"//{netloc}")
        return (parts.hostname or "").lower(), parts.port or _default_port(scheme)
    except ValueError:
        return None


def cross_site(scope: Scope) -> str | None:
    """Why a state-changing request comes from another site (None: it does not)."""
    if _header(scope, b"sec-fetch-site") == "cross-site":
        return "the browser marks it cross-site (Sec-Fetch-Site)"
    origin = _header(scope, b"origin")
    if origin is None:
        return None
    host = _header(scope, b"host")
    try:
        parts = urlsplit(origin)
        origin_at = (parts.hostname or "").lower(), parts.port or _default_port(parts.scheme)
    except ValueError:
        return f"its Origin {origin!r} is not a URL"
    if origin == "null" or not parts.hostname:
        return "its Origin is opaque (null)"
    if host is None:
        return "it names no Host to compare its Origin with"
    # behind a TLS-terminating proxy the daemon sees http while the browser says https: the
    # host and port the browser used are what identify the site (the proxy must pass Host)
    own = _host_port(host, parts.scheme)  # a Host without a port: the Origin's scheme's default port
    if own is None or own != origin_at:
        return f"its Origin {origin} is not this server's ({host})"
    return None


class BrowserSafety:
    """The middleware: headers on every response; cross-site state changes refused."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(HEADERS)
        if scope.get("scheme") == "https":
            extra.append(HSTS)
        if str(scope.get("path", "")).startswith("/api/"):
            extra.append(NO_STORE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {bytes(k).lower() for k, _ in message.get("headers", ())}
                message["headers"] = [*message.get("headers", ()), *(h for h in extra if h[0] not in present)]
            await send(message)

        if scope.get("method", "GET") not in SAFE_METHODS and (why := cross_site(scope)) is not None:
            from lifeboat.app.api.problems import problem

            response = problem(
                403,
                f"refused: a request that changes state from another site ({why})",
                kind="cross-site-request",
                exit_code=int(ExitCode.USAGE),
                hint="call the API from the dashboard this server serves, or without an Origin header (curl, scripts)",
            )
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
