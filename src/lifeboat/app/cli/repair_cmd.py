"""Repair a damaged repository."""

from __future__ import annotations

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context
from lifeboat.app.cli.options import LockWaitOpt


def index(ctx: Context, lock_wait: LockWaitOpt = None) -> None:
    """Rebuild the index from the packs' own trailers (takes the exclusive lock)."""
    from lifeboat.operations.maintenance import repair_index

    state: CliContext = ctx.obj
    repo = state.open_repository()
    result = repair_index(repo, lock_wait=state.lock_wait(lock_wait))
    if state.json:
        state.output.emit_json(result.to_json())
        return
    for problem in result.packs_unreadable:
        state.output.raw(f"unreadable: {problem}")
    state.output.line(
        f"indexed {result.blobs_indexed} blobs in {result.packs_indexed} packs; "
        f"wrote {len(result.index_files_written)} index files, removed {result.index_files_removed}"
    )
    for name in result.index_files_not_removed:
        state.output.line(f"  could not remove yet (the storage refuses, e.g. object lock; superseded): {name}")


COMMANDS = {"index": index}
