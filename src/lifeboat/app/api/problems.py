"""Every error of the API as problem JSON (RFC 9457, ``application/problem+json``):

    {"type": "urn:lifeboat:problem:forbidden", "title": "Forbidden", "status": 403,
     "detail": "…", "hint": "…", "exit_code": 2}

``detail`` and ``hint`` are the CLI's message and hint, ``exit_code`` the code the same error
has on the command line (docs/cli.md#exit-codes). A :class:`~lifeboat.errors.LifeboatError`
raised by a handler becomes the status its exit code stands for (:data:`STATUS_BY_EXIT_CODE`);
FastAPI's validation errors, unknown paths and methods, and anything unexpected (500, with no
detail of the exception) take the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse

from lifeboat.errors import ExitCode, LifeboatError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:lifeboat:problem:"

# The HTTP status of a LifeboatError, by its exit code (docs/api.md#problem-json).
STATUS_BY_EXIT_CODE: dict[ExitCode, int] = {
    ExitCode.ERROR: 500,
    ExitCode.USAGE: 400,
    ExitCode.PARTIAL: 500,
    ExitCode.NO_REPOSITORY: 503,
    ExitCode.LOCKED: 409,
    ExitCode.WRONG_PASSPHRASE: 503,
    ExitCode.INTEGRITY: 500,
    ExitCode.STORAGE: 503,
    ExitCode.MISSING_TOOL: 503,
    ExitCode.SOURCE_FAILED: 502,
    ExitCode.OBJECTIVE_MISSED: 500,
    ExitCode.INTERRUPTED: 503,
}

# The exit code of an HTTP error that did not come from a LifeboatError.
EXIT_CODE_BY_STATUS: dict[int, ExitCode] = {
    400: ExitCode.USAGE,
    401: ExitCode.USAGE,
    403: ExitCode.USAGE,
    404: ExitCode.USAGE,
    405: ExitCode.USAGE,
    406: ExitCode.USAGE,
    409: ExitCode.LOCKED,
    413: ExitCode.USAGE,
    415: ExitCode.USAGE,
    422: ExitCode.USAGE,
}

HINTS: dict[int, str] = {
    401: "send 'Authorization: Bearer <token>' with a token from 'lifeboat token create' (docs/api.md#tokens)",
    403: "this needs a token of a higher role: an admin creates one with 'lifeboat token create --role …'",
    404: "the API's paths are listed in its OpenAPI schema at /api/openapi.json",
    405: "the API's paths and their methods are listed in its OpenAPI schema at /api/openapi.json",
    422: "fix the parameters named in 'errors'; the OpenAPI schema at /api/openapi.json describes them",
    500: "the daemon's log says more; report it if it persists",
}


def slug(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return "-".join(phrase.lower().replace("'", "").split())


def title_of(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(
    status: int,
    detail: str,
    *,
    hint: str | None = None,
    exit_code: int | None = None,
    kind: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem response: ``kind`` names its type (``urn:lifeboat:problem:<kind>``; default the
    status's phrase), ``extra`` members are added as they are."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + (kind or slug(status)),
        "title": title or title_of(status),
        "status": status,
        "detail": detail,
        "hint": hint if hint is not None else HINTS.get(status, ""),
        "exit_code": int(exit_code if exit_code is not None else EXIT_CODE_BY_STATUS.get(status, ExitCode.ERROR)),
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


class Problem(Exception):
    """Raise in a handler or dependency to answer with a problem (see :func:`problem`)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        hint: str | None = None,
        exit_code: int | None = None,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.hint = hint
        self.exit_code = exit_code
        self.kind = kind
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return problem(
            self.status, self.detail, hint=self.hint, exit_code=self.exit_code, kind=self.kind, headers=self.headers
        )


def status_of(error: LifeboatError) -> int:
    """The HTTP status of a LifeboatError: 404 for a thing that does not exist, else by exit code."""
    from lifeboat.errors import ObjectNotFound

    if isinstance(error, ObjectNotFound):
        return 404
    return STATUS_BY_EXIT_CODE.get(ExitCode(int(error.exit_code)), 500)


def from_error(error: LifeboatError) -> JSONResponse:
    status = status_of(error)
    return problem(
        status,
        error.message,
        hint=error.hint,
        exit_code=int(error.exit_code),
        kind=_kind_of(error),
    )


def _kind_of(error: LifeboatError) -> str:
    """``RepositoryLocked`` → ``repository-locked``."""
    name = type(error).__name__
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


# --- handlers ------------------------------------------------------------------------------------
def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return exc.response()


def _on_lifeboat_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LifeboatError)
    return from_error(exc)


def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    http_exc: HTTPException = exc  # type: ignore[assignment]
    status = int(http_exc.status_code)
    detail = http_exc.detail if isinstance(http_exc.detail, str) else title_of(status)
    if status == 404 and detail == "Not Found":
        detail = f"there is nothing at {request.url.path}"
    headers = dict(getattr(http_exc, "headers", None) or {})
    if status == 405:
        if detail == "Method Not Allowed":
            detail = f"{request.method} is not allowed on {request.url.path}"
        if allowed := _allowed_methods(request):  # every route of the path, not only the first one tried
            headers["Allow"] = ", ".join(allowed)
    return problem(status, detail, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    from fastapi import routing

    path = request.scope.get("path", "")
    methods: set[str] = set()
    for context in routing.iter_route_contexts(request.app.routes):
        regex = getattr(context, "path_regex", None)
        if regex is not None and regex.match(path) and context.methods:
            methods |= set(context.methods)
    return sorted(methods)


def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    validation: RequestValidationError = exc  # type: ignore[assignment]
    errors = [
        {"location": ".".join(str(part) for part in error.get("loc", ())), "message": str(error.get("msg", ""))}
        for error in validation.errors()
    ]  # the message and where, never the input: it may be a secret
    names = ", ".join(e["location"] for e in errors) or "the request"
    return problem(422, f"invalid request: {names}", kind="invalid-request", title="Invalid request", errors=errors)


def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    from lifeboat.app.api.headers import HEADERS

    # answered by Starlette's outermost middleware, outside the others: the headers come here
    headers = {name.decode(): value.decode() for name, value in HEADERS}
    return problem(500, "internal error", kind="internal-error", exit_code=int(ExitCode.ERROR), headers=headers)


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem JSON."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(LifeboatError, _on_lifeboat_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected)


# The problem's schema, for the OpenAPI document's error responses.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "hint", "exit_code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "hint": {"type": "string"},
        "exit_code": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"location": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
