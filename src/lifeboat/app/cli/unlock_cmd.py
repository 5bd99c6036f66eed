"""Remove stale locks (held by processes that died); --remove-all removes every lock."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Option


def command(
    ctx: Context,
    remove_all: Annotated[bool, Option("--remove-all", help="Also remove locks that look alive.")] = False,
) -> None:
    from lifeboat.operations.maintenance import unlock

    state: CliContext = ctx.obj
    repo = state.open_repository()
    removed = unlock(repo, remove_all=remove_all)
    if state.json:
        state.output.emit_json({"removed": [r.describe() for r in removed]})
        return
    for record in removed:
        state.output.line(f"removed {record.describe()}")
    state.output.line(f"{len(removed)} locks removed")
