"""The API's tokens over the API (admin): list, create (the token shown once), revoke — the
same operations as ``lifeboat token list/create/revoke`` (app/api/tokens.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lifeboat.app.api.audit import audit_as
from lifeboat.app.api.auth import Principal, require
from lifeboat.app.api.problems import Problem
from lifeboat.app.api.tokens import (
    NAME,
    NoSuchToken,
    Role,
    TokenExists,
    TokenRecord,
    TokenStore,
    create_token,
    read_tokens,
    revoke_token,
    utc_now,
)

router = APIRouter(tags=["tokens"])
AdminOnly = Annotated[Principal, Depends(require(Role.ADMIN))]
RoleName = Literal["viewer", "operator", "admin"]


class TokenInfo(BaseModel):
    """A token as listed: never the token itself."""

    name: str
    role: RoleName
    created: str
    expires: str | None
    expired: bool


MAX_LIFETIME = 100 * 365 * 86400  # seconds: a century


def _whole_number(value: Any) -> Any:
    """A JSON integer (``3600`` or ``3600.0``), not a boolean nor text."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("a whole number of seconds")


class NewToken(BaseModel):
    """A token to create."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=f"^{NAME.pattern}$", examples=["ci-dashboard"])
    role: RoleName
    expires_in: int | None = Field(
        default=None, ge=1, le=MAX_LIFETIME, description="valid for this many seconds (7776000: 90 days); none: ever"
    )

    @field_validator("expires_in", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        return value if value is None else _whole_number(value)


class CreatedToken(TokenInfo):
    token: str = Field(description="the token: shown in this answer only, kept nowhere")


def _info(record: TokenRecord) -> TokenInfo:
    return TokenInfo(**record.public(utc_now()))


@router.get("/api/v1/tokens", summary="The API's tokens (not the tokens themselves)")
def list_tokens(request: Request, principal: AdminOnly) -> list[TokenInfo]:
    store: TokenStore = request.app.state.tokens
    return [_info(record) for record in read_tokens(store.path)]


@router.post(
    "/api/v1/tokens",
    status_code=201,
    summary="Create a token (shown once)",
    responses={409: {"description": "A token of that name exists already"}},
)
def create(request: Request, body: NewToken, principal: AdminOnly) -> CreatedToken:
    audit_as(request, "token create", name=body.name, role=body.role, expires_in=body.expires_in)
    expires_in = timedelta(seconds=body.expires_in) if body.expires_in is not None else None
    store: TokenStore = request.app.state.tokens
    try:
        token, record = create_token(store.path, body.name, Role.of(body.role), expires_in=expires_in)
    except TokenExists as exc:
        raise Problem(409, exc.message, hint=exc.hint, exit_code=int(exc.exit_code), kind="token-exists") from None
    return CreatedToken(**_info(record).model_dump(), token=token)


@router.delete("/api/v1/tokens/{name}", status_code=204, summary="Revoke a token (refused from the next request)")
def revoke(request: Request, name: str, principal: AdminOnly) -> Response:
    audit_as(request, "token revoke", name=name)
    store: TokenStore = request.app.state.tokens
    try:
        revoke_token(store.path, name)
    except NoSuchToken as exc:
        raise Problem(404, exc.message, hint=exc.hint, exit_code=int(exc.exit_code), kind="no-such-token") from None
    return Response(status_code=204)
