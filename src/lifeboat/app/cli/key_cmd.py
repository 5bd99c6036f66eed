"""Manage the passphrases (key files) that open the repository; no data is re-encrypted."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context


def list_keys(ctx: Context) -> None:
    """List the key files (the one in use is marked *; a damaged one says so)."""
    state: CliContext = ctx.obj
    repo = state.open_repository(read_only=True)
    keys = repo.list_keys()
    if state.json:
        state.output.emit_json([k.__dict__ for k in keys])
        return
    state.output.table(
        ["", "ID", "Created", "Host", "User", "KDF"],
        [
            [
                "*" if k.current else "",
                k.id[:8],
                "damaged key file" if k.damaged else "unreadable key file" if k.unreadable else k.created[:19],
                k.hostname,
                k.username,
                k.algorithm,
            ]
            for k in keys
        ],
    )


def add(ctx: Context) -> None:
    """Add a passphrase (read from LIFEBOAT_NEW_PASSWORD_FILE, ..._COMMAND, or a prompt)."""
    state: CliContext = ctx.obj
    repo = state.open_repository()
    key_id = repo.add_key(state.new_passphrase())
    if state.json:
        state.output.emit_json({"added": key_id})
    else:
        state.output.line(f"added key {key_id[:8]}")


def remove(ctx: Context, key_id: Annotated[str, Argument(help="Key id or prefix.")]) -> None:
    """Remove a key file (never the last one, nor the one in use)."""
    state: CliContext = ctx.obj
    repo = state.open_repository()
    full = repo.resolve_key(key_id)
    repo.remove_key(full)
    if state.json:
        state.output.emit_json({"removed": full})
    else:
        state.output.line(f"removed key {full[:8]}")


def passwd(ctx: Context) -> None:
    """Change the passphrase in use (adds a key for the new one, removes the old)."""
    state: CliContext = ctx.obj
    repo = state.open_repository()
    old = repo.key_id
    new = repo.change_passphrase(state.new_passphrase())
    if state.json:
        state.output.emit_json({"added": new, "removed": old})
    else:
        state.output.line(f"passphrase changed: key {old[:8]} replaced by {new[:8]}")


COMMANDS = {"list": list_keys, "add": add, "remove": remove, "passwd": passwd}
