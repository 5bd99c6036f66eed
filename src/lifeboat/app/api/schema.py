"""The OpenAPI document as the API answers (``/api/openapi.json``): every operation's errors
are problem JSON, and each ``/api/v1`` operation says the role it needs.

FastAPI documents a 422 of its own shape and no 401/403; this rewrites, once, when the schema
is first asked for: a ``Problem`` schema, the ``401``/``403`` answers of every operation that
needs a token, its own ``422``, a ``default`` problem answer for the other errors, and
``x-required-role`` (viewer, operator, admin) on each operation that needs one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lifeboat.app.api.auth import route_roles
from lifeboat.app.api.problems import PROBLEM_JSON, PROBLEM_SCHEMA

if TYPE_CHECKING:
    from fastapi import FastAPI

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _answer(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def rewrite(doc: dict[str, Any], roles: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """``doc`` with problem answers and roles (changed in place; returned)."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            role = roles.get((method.upper(), path))
            if role is not None:
                operation["x-required-role"] = role.label
                responses.setdefault("401", _answer("no token, or one that is wrong, revoked or expired"))
                responses.setdefault("403", _answer(f"the token's role is below {role.label}"))
            if "422" in responses:
                responses["422"] = _answer("the request does not fit this schema (see errors)")
            if path.startswith("/api/"):
                responses.setdefault("default", _answer("an error (docs/api.md#problem-json)"))
    return doc


def install(app: FastAPI) -> None:
    """Serve the rewritten document at ``app.openapi_url``."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = rewrite(doc, route_roles(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
