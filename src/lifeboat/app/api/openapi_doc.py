"""The answers every operation can give, written into the OpenAPI schema so that it describes
what the API really sends (the fuzz test, tests/api/test_fuzz.py, holds each answer to it):

- 401 on every operation that needs a token, 403 on those that need more than a viewer;
- 404 on every operation with a path parameter (the thing it names does not exist);
- 400 on every operation with a body (a body that is not JSON);
- 422 (FastAPI's validation error) as problem JSON, which is what app/api/problems.py sends;
- each 4xx an operation declares with ``responses=`` as problem JSON too.

Each is ``application/problem+json`` with the :data:`PROBLEM_SCHEMA` body. An operation's own
answers (409 when a job already runs, …) are declared on its route with ``responses=``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lifeboat.app.api.problems import PROBLEM_JSON

if TYPE_CHECKING:
    from fastapi import FastAPI

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An error (RFC 9457): the CLI's message as detail, its hint and exit code.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "hint": {"type": ["string", "null"]},
        "exit_code": {"type": "integer"},
    },
}
_REF = {"$ref": "#/components/schemas/Problem"}
_METHODS = ("get", "put", "post", "delete", "patch", "options", "head")


def _problem(responses: dict[str, Any], status: int, description: str) -> None:
    entry = responses.setdefault(str(status), {"description": description})
    entry["content"] = {PROBLEM_JSON: {"schema": _REF}}


def complete(schema: dict[str, Any], roles: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """``schema`` with the problem answers of each operation added (``roles``: the role each
    (METHOD, path) requires, as app/api/auth.py ``route_roles`` gives them)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            role = roles.get((method.upper(), path))
            if role is not None:
                _problem(responses, 401, "No token, or a wrong, revoked or expired one")
                if int(role) > 1:
                    _problem(responses, 403, f"The token's role is below {getattr(role, 'label', role)}")
            if "{" in path:
                _problem(responses, 404, "What the path names does not exist")
            if "requestBody" in operation:
                _problem(responses, 400, "The body is not JSON")
            for status, entry in responses.items():
                if (status.startswith("4") and "content" not in entry) or status == "422":
                    _problem(responses, int(status), entry.get("description") or "")
    return schema


def install(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI schema with the problem answers completed (built once)."""
    from lifeboat.app.api.auth import route_roles

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate(), route_roles(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
