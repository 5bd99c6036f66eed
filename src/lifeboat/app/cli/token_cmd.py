"""Manage the API's bearer tokens (docs/api.md#tokens): create one for a role (shown once),
list them, revoke one (the daemon refuses it from its next request)."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Option


def _path(state: CliContext) -> str:
    from lifeboat.app.api.tokens import tokens_path

    return str(tokens_path(state.state_directory()))


def create(
    ctx: Context,
    name: Annotated[
        str, Option("--name", metavar="NAME", help="The token's name (in the audit log, in 'token list').")
    ],
    role: Annotated[str, Option("--role", metavar="ROLE", help="viewer, operator or admin (docs/api.md#roles).")],
    expires: Annotated[
        str | None, Option("--expires", metavar="DURATION", help="Valid for this long (90d, 12h, 1y) [default: ever].")
    ] = None,
) -> None:
    """Create a token for a role and print it — once: only its hash is kept."""
    from pathlib import Path

    from lifeboat.app.api.tokens import Role, create_token
    from lifeboat.core.units import parse_duration
    from lifeboat.errors import UsageError, option

    state: CliContext = ctx.obj
    chosen = Role.of(role)
    expires_in = None
    if expires is not None:
        try:
            expires_in = parse_duration(expires)
        except ValueError as exc:
            raise UsageError(f"{option('expires')}: {exc}", hint="e.g. 90d, 12h, 1y") from None
    token, record = create_token(Path(_path(state)), name, chosen, expires_in=expires_in)
    out = state.output
    if state.json:
        out.emit_json({**record.public(record.created), "token": token})
        return
    until = f", valid until {record.expires.isoformat()}" if record.expires else ""
    out.info(f"token {record.name!r} ({record.role.label}{until}) created; it is shown only now:")
    out.raw(token)


def list_tokens(ctx: Context) -> None:
    """List the tokens: name, role, created, expires (never the token)."""
    from pathlib import Path

    from lifeboat.app.api.tokens import read_tokens, utc_now

    state: CliContext = ctx.obj
    now = utc_now()
    records = [r.public(now) for r in read_tokens(Path(_path(state)))]
    if state.json:
        state.output.emit_json(records)
        return
    state.output.table(
        ["Name", "Role", "Created", "Expires"],
        [
            [
                r["name"],
                r["role"],
                r["created"],
                ("expired " if r["expired"] else "") + (r["expires"] or "never"),
            ]
            for r in records
        ],
    )


def revoke(ctx: Context, name: Annotated[str, Argument(help="The token's name.", metavar="NAME")]) -> None:
    """Revoke a token: the daemon refuses it from its next request, without a restart."""
    from pathlib import Path

    from lifeboat.app.api.tokens import revoke_token

    state: CliContext = ctx.obj
    record = revoke_token(Path(_path(state)), name)
    if state.json:
        state.output.emit_json({"revoked": record.name})
    else:
        state.output.line(f"revoked token {record.name!r} ({record.role.label})")


COMMANDS = {"create": create, "list": list_tokens, "revoke": revoke}
