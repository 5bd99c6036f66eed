"""List the snapshots in the repository (filter by source, host, tag or path)."""

from __future__ import annotations

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context
from lifeboat.app.cli.options import HostOpt, PathOpt, SourceOpt, TagOpt, snapshot_filter


def command(
    ctx: Context,
    source: SourceOpt = None,
    host: HostOpt = None,
    tag: TagOpt = None,
    path: PathOpt = None,
) -> None:
    from lifeboat.app.cli.render import SNAPSHOT_HEADERS, snapshot_row

    state: CliContext = ctx.obj
    repo = state.open_repository(read_only=True)
    snapshots = snapshot_filter(source, host, tag, path).apply(repo.snapshots())
    if state.json:
        state.output.emit_json([s.to_json() for s in snapshots])
        return
    state.output.table(SNAPSHOT_HEADERS, [snapshot_row(s) for s in snapshots])
    state.output.line(f"{len(snapshots)} snapshots")
