"""Who calls the API, and what they may do (docs/api.md#authentication).

Every endpoint of ``/api/v1`` takes a dependency made by :func:`require`::

    @router.get("/api/v1/sources")
    def sources(principal: Viewer) -> ...          # Annotated[Principal, Depends(require(Role.VIEWER))]

    @router.post("/api/v1/jobs/{name}/run", dependencies=[Depends(require(Role.OPERATOR))])

A request without a bearer token, or with one the token file does not hold (wrong, revoked,
expired), is answered 401 with ``WWW-Authenticate: Bearer``; a token of a lower role than the
endpoint needs, 403. Roles are ordered: viewer < operator < admin. The token is only ever read
from the ``Authorization`` header — never a cookie or a query parameter — so a browser cannot
be made to send it by another site (CSRF).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from lifeboat.app.api.audit import MUTATING
from lifeboat.app.api.problems import Problem
from lifeboat.app.api.tokens import Role, TokenFileError, TokenStore, utc_now
from lifeboat.errors import ExitCode

if TYPE_CHECKING:
    from fastapi import FastAPI

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token made by 'lifeboat token create', sent as 'Authorization: Bearer lb_…'.",
)

CHALLENGE = 'Bearer realm="lifeboat"'


@dataclass(frozen=True)
class Principal:
    """The caller: the token's name and role."""

    name: str
    role: Role

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role.label}


def _unauthorized(detail: str, *, invalid: bool) -> Problem:
    challenge = CHALLENGE + (', error="invalid_token"' if invalid else "")
    return Problem(
        401,
        detail,
        kind="unauthorized",
        exit_code=int(ExitCode.USAGE),
        headers={"WWW-Authenticate": challenge},
    )


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The principal of a request's bearer token (raises a 401 :class:`Problem`)."""
    if credentials is None:
        raise _unauthorized("this needs a bearer token in the Authorization header", invalid=False)
    store: TokenStore = request.app.state.tokens
    try:
        record = store.find(credentials.credentials)
    except TokenFileError as exc:  # the caller learns no path: the daemon's log has it
        request.app.state.report_error("the token file", exc)
        raise Problem(
            503,
            "the daemon cannot read its tokens",
            hint="the daemon's log says why ('api error'); 'lifeboat token list' on the host too",
            exit_code=int(exc.exit_code),
            kind="tokens-unavailable",
        ) from None
    if record is None:
        raise _unauthorized("the token is not valid (wrong or revoked)", invalid=True)
    now = utc_now()
    if record.expired(now):
        assert record.expires is not None
        raise _unauthorized(f"the token {record.name!r} expired at {record.expires.isoformat()}", invalid=True)
    principal = Principal(record.name, record.role)
    request.state.principal = principal  # for the audit of this call (app/api/audit.py)
    return principal


def _audit_ready(request: Request) -> None:
    """With ``audit.required``, a change whose entry could not be written is not made (as on the
    command line): 503."""
    from lifeboat.app.observability.audit import AuditError

    try:
        request.app.state.audit_ready()
    except AuditError as exc:
        raise Problem(
            503,
            "the audit log cannot be written, and audit.required is set: nothing was changed",
            hint="the daemon's log says why ('api error'); fix the audit log's path or permissions",
            exit_code=int(exc.exit_code),
            kind="audit-unavailable",
        ) from None


_DEPENDENCIES: dict[Role, Callable[..., Principal]] = {}


def require(role: Role | str) -> Callable[..., Principal]:
    """The dependency that lets through a token of ``role`` or a higher one."""
    needed = role if isinstance(role, Role) else Role.of(role)
    if needed in _DEPENDENCIES:  # one function per role: FastAPI runs it once per request
        return _DEPENDENCIES[needed]

    def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Principal:
        principal = authenticate(request, credentials)
        if principal.role < needed:
            raise Problem(
                403,
                f"the token {principal.name!r} has the role {principal.role.label}; this needs {needed.label}",
                kind="forbidden",
                exit_code=int(ExitCode.USAGE),
            )
        if request.method in MUTATING:
            _audit_ready(request)
        return principal

    dependency.required_role = needed  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{needed.label}"
    _DEPENDENCIES[needed] = dependency
    return dependency


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def _required(dependant: Any) -> Role | None:
    found: Role | None = None
    stack = [dependant] if dependant is not None else []
    while stack:
        current = stack.pop()
        role = getattr(current.call, "required_role", None)
        if isinstance(role, Role) and (found is None or role > found):
            found = role
        stack.extend(current.dependencies)
    return found


def route_roles(app: FastAPI) -> dict[tuple[str, str], Role | None]:
    """Each (method, path template) of ``app`` and the role it requires — the highest of its
    :func:`require` dependencies, router-level ones included; None when it is public
    (``/healthz``, ``/metrics``, the OpenAPI schema)."""
    from fastapi import routing

    roles: dict[tuple[str, str], Role | None] = {}
    for context in routing.iter_route_contexts(app.routes):
        if not isinstance(context.original_route, routing.APIRoute):
            continue
        path = context.path_format or context.path
        dependant = getattr(context, "dependant", None) or context.original_route.dependant
        for method in sorted(context.methods or ()):
            roles[(method, str(path))] = _required(dependant)
    return roles


router = APIRouter(tags=["auth"])


class Identity(BaseModel):
    """A token's name and role."""

    name: str
    role: Literal["viewer", "operator", "admin"]


@router.get("/api/v1/whoami", summary="The calling token's name and role")
def whoami(principal: Viewer) -> Identity:
    return Identity(name=principal.name, role=principal.role.label)  # type: ignore[arg-type]
