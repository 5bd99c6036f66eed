"""Every mutating API call in the audit log (docs/audit.md, docs/api.md#audit): one entry per
POST, PUT, PATCH or DELETE under ``/api/`` that came with a known token — done or refused —
with the daemon's OS user and the token's name as the actor.

The entry is written before the last byte of the response is sent, so a client that has its
answer finds its entry. A handler names what it did with :func:`audit_as` (``action`` as the
CLI's verb, e.g. ``backup``, and its arguments); otherwise the action is ``api`` and the
arguments are the method, the route's path template and its path parameters. Never the body
nor the query string: they are not needed to say what was done, and may hold secrets. A call
without a valid token (401) is not recorded: it has nobody to name, and anyone could fill the
log with them. A log that cannot be written does not fail the call (the daemon logs it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from lifeboat.app.api.security import ASGIApp, Message, Receive, Scope, Send

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAX_BODY = 65536  # a problem's body is read for its exit code; bigger bodies are not problems


def audit_as(request: Any, action: str, **arguments: Any) -> None:
    """Name the action of this call and its arguments in its audit entry."""
    request.state.audit = (action, arguments)


AuditWriter = Callable[[str, str, Mapping[str, Any], Mapping[str, Any]], None]


class AuditCalls:
    """The middleware; ``write(token_name, action, arguments, result)`` appends the entry."""

    def __init__(self, app: ASGIApp, write: AuditWriter, on_error: Callable[[Exception], None]) -> None:
        self.app = app
        self.write = write
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") not in MUTATING
            or not str(scope.get("path", "")).startswith("/api/")
        ):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 0
        problem_body: list[bytes] | None = None
        written = False

        async def record() -> None:
            nonlocal written
            if written:
                return
            written = True
            principal = state.get("principal")
            if principal is None:
                return
            await self._append(scope, state, principal.name, status, b"".join(problem_body or []))

        async def audited_send(message: Message) -> None:
            nonlocal status, problem_body
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for key, value in message.get("headers", ()):
                    if bytes(key).lower() == b"content-type" and bytes(value).startswith(b"application/problem+json"):
                        problem_body = []
            elif message["type"] == "http.response.body":
                if problem_body is not None and sum(map(len, problem_body)) < _MAX_BODY:
                    problem_body.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    await record()
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        finally:
            await record()

    async def _append(self, scope: Scope, state: Mapping[str, Any], token: str, status: int, body: bytes) -> None:
        from anyio import to_thread

        action, arguments = state.get("audit") or ("api", {})
        if action == "api":
            route = scope.get("route")
            arguments = {
                "method": scope.get("method"),
                "path": getattr(route, "path", None) or scope.get("path"),
                **{f"path.{k}": str(v) for k, v in (scope.get("path_params") or {}).items()},
                **arguments,
            }
        result = _result(status, body)
        try:
            await to_thread.run_sync(self.write, token, action, arguments, result)
        except Exception as exc:  # noqa: BLE001 - the call is done; the daemon's log says why
            self.on_error(exc)


def _result(status: int, body: bytes) -> dict[str, Any]:
    from lifeboat.core.auditchain import status_of

    if status == 0:  # the handler raised: the client gets a 500
        return {"status": "error", "exit_code": 1, "error": "internal error", "http_status": 500}
    if status < 400:
        return {"status": "ok", "exit_code": 0, "error": None, "http_status": status}
    exit_code, error = 1, f"HTTP {status}"
    try:
        doc = json.loads(body) if body else {}
        exit_code = int(doc.get("exit_code", exit_code))
        error = str(doc.get("detail") or error)
    except (ValueError, TypeError, AttributeError):
        pass
    return {"status": status_of(exit_code), "exit_code": exit_code, "error": error, "http_status": status}
