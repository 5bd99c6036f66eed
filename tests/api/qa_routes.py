"""Every endpoint of the daemon's app and the role it requires, read from the FastAPI app
itself — its routes and their dependency trees — so an endpoint added later is probed by the
fuzz test's authentication checks without anyone listing it.

An endpoint's required role is the role of the ``require(role)`` dependency (app/api/auth.py)
found anywhere in its dependency tree (route, router or app level). An endpoint without one is
public and must be in :data:`PUBLIC`, which says why; a route the test does not know fails it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

ROLE_ORDER = ("viewer", "operator", "admin")

# The endpoints anyone may call, and why: each must still answer without a secret.
PUBLIC: dict[str, str] = {
    "/healthz": "liveness for systemd/Kubernetes probes: status and loop age only",
    "/metrics": "Prometheus scraping: the metric set of docs/metrics.md (no secret by construction)",
    "/api/openapi.json": "the schema: public by design (it describes, it holds no data)",
    "/api/docs": "the schema's docs page (local assets)",
    "/api/docs/oauth2-redirect": "part of the docs page",
    "/": "the dashboard's page: a shell without data; the data comes from the API with a token",
    "/static": "the dashboard's assets (JS, CSS): the same for everyone",
    "/favicon.ico": "the dashboard's icon",
    "/favicon.svg": "the dashboard's icon",
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the route's path template, e.g. /api/v1/snapshots/{id}
    role: str | None  # None: public
    in_schema: bool
    api_route: bool = True  # a FastAPI route (else a Starlette route or a mount)

    @property
    def params(self) -> list[str]:
        return re.findall(r"{([^}:]+)(?::[^}]*)?}", self.path)

    def url(self, values: dict[str, str]) -> str:
        """The path with each parameter filled from ``values`` (a name it lacks: "qa")."""
        return re.sub(r"{([^}:]+)(?::[^}]*)?}", lambda m: values.get(m.group(1), "qa"), self.path)

    @property
    def mutating(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def build_app() -> FastAPI:
    """The app as the daemon builds it, over a stand-in daemon view: only its routes are read
    (nothing is served or called)."""
    from unittest.mock import MagicMock

    from lifeboat.app.api.app import create_app

    return create_app(MagicMock(name="daemon view"))


def role_of_dependency(call: Callable[..., Any] | None) -> str | None:
    """The role a ``require(role)`` dependency (app/api/auth.py) enforces, else None: the
    dependency carries it as ``required_role``."""
    role = getattr(call, "required_role", None)
    label = getattr(role, "label", role)
    if isinstance(label, str) and label in ROLE_ORDER:
        return label
    return None


def _dependency_calls(dependant: Any) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependency_calls(sub)


def required_role(dependant: Any) -> str | None:
    """The highest role any dependency in the tree of ``dependant`` requires (None: public)."""
    roles = [r for r in (role_of_dependency(call) for call in _dependency_calls(dependant)) if r]
    return max(roles, key=ROLE_ORDER.index) if roles else None


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every method of every route of ``app``, those of included routers too (with their
    prefixes and router-level dependencies); HEAD, implied by GET, left out."""
    from fastapi.routing import iter_route_contexts

    found: list[Endpoint] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            role = required_role(context.dependant)
            for method in sorted((context.methods or set()) - {"HEAD"}):
                found.append(Endpoint(method, str(context.path), role, bool(context.include_in_schema)))
        elif isinstance(route, Route):
            for method in sorted((context.methods or {"GET"}) - {"HEAD"}):
                found.append(Endpoint(method, str(context.path), None, bool(route.include_in_schema), False))
        elif isinstance(route, Mount):
            found.append(Endpoint("GET", str(context.path), None, False, False))
        else:
            raise AssertionError(f"a route of a kind the fuzz test does not know: {route!r}")
    return found
