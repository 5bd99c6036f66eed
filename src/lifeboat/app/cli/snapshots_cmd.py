"""List the snapshots in the repository (filter by source, host, tag or path)."""

from __future__ import annotations

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Exit
from lifeboat.app.cli.options import HostOpt, PathOpt, SourceOpt, TagOpt, snapshot_filter


def command(
    ctx: Context,
    source: SourceOpt = None,
    host: HostOpt = None,
    tag: TagOpt = None,
    path: PathOpt = None,
) -> None:
    from lifeboat.app.cli.render import SNAPSHOT_HEADERS, snapshot_row
    from lifeboat.errors import ExitCode, IntegrityError

    state: CliContext = ctx.obj
    out = state.output
    repo = state.open_repository(read_only=True, cached=True)
    readable, unreadable = repo.snapshots_and_damage()
    snapshots = snapshot_filter(source, host, tag, path).apply(readable)
    if state.json:
        # A damaged snapshot is listed too (its source, host and time are unknown, so every filter shows it).
        out.emit_json([s.to_json() for s in snapshots] + [u.to_json() for u in unreadable])
    else:
        out.table(SNAPSHOT_HEADERS, [snapshot_row(s) for s in snapshots])
        out.line(f"{len(snapshots)} snapshots")
        for damaged in unreadable:
            out.raw(f"error: {damaged.describe()}")
    if unreadable:
        count = f"{len(unreadable)} snapshot{'s' if len(unreadable) > 1 else ''}"
        out.error(
            IntegrityError(
                f"{count} could not be read (listed above); the others are listed",
                hint=f"'lifeboat check' shows what else is damaged; 'lifeboat forget {unreadable[0].id[:8]}' "
                "removes a damaged snapshot by id",
            )
        )
        raise Exit(int(ExitCode.INTEGRITY))
