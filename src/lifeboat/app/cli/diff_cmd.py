"""Show what changed between two snapshots (+ added, - removed, M modified, U metadata)."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context
from lifeboat.app.cli.options import NoLockOpt


def command(
    ctx: Context,
    first: Annotated[str, Argument(help="The older snapshot.")],
    second: Annotated[str, Argument(help="The newer snapshot.")],
    no_lock: NoLockOpt = False,
) -> None:
    from collections import Counter

    from lifeboat.operations.browse import change_symbol, diff_trees
    from lifeboat.operations.read_lock import read_lock

    state: CliContext = ctx.obj
    repo = state.open_repository(read_only=no_lock)
    with read_lock(repo, use_lock=not no_lock):
        old, new = repo.resolve_snapshot(first), repo.resolve_snapshot(second)
        changes = list(diff_trees(repo, old.tree, new.tree))
    counts = Counter(c.kind for c in changes)
    if state.json:
        state.output.emit_json(
            {"from": old.id, "to": new.id, "changes": [c.to_json() for c in changes], "counts": dict(counts)}
        )
        return
    for change in changes:
        state.output.raw(f"{change_symbol(change.kind)}  {change.path}")
    state.output.line(
        f"{counts['added']} added, {counts['removed']} removed, {counts['modified']} modified, "
        f"{counts['metadata']} with changed metadata"
    )
