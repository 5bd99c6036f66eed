"""Restore a snapshot (or ID:/sub/path) into a directory, verifying every byte."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Exit, Option
from lifeboat.app.cli.options import (
    PATTERN_HINT,
    HostOpt,
    NoLockOpt,
    PathOpt,
    SourceOpt,
    TagOpt,
    WorkersOpt,
    snapshot_filter,
)


def command(
    ctx: Context,
    snapshot: Annotated[str, Argument(help="Snapshot id prefix, 'latest', or ID:/sub/path.")],
    target: Annotated[str, Option("--target", "-t", metavar="DIR", help="Directory to restore into.")],
    include: Annotated[
        list[str] | None, Option("--include", "-i", metavar="PATTERN", help="Only matching paths.")
    ] = None,
    exclude: Annotated[
        list[str] | None, Option("--exclude", "-e", metavar="PATTERN", help="Leave out matching paths.")
    ] = None,
    dry_run: Annotated[bool, Option("--dry-run", help="Show what would be restored.")] = False,
    force: Annotated[bool, Option("--force", help="Restore into a non-empty directory, replacing files.")] = False,
    source: SourceOpt = None,
    host: HostOpt = None,
    tag: TagOpt = None,
    path_filter: PathOpt = None,
    no_lock: NoLockOpt = False,
    workers: WorkersOpt = None,
) -> None:
    from lifeboat.core.patterns import PathFilter
    from lifeboat.core.progress import Progress
    from lifeboat.core.units import format_bytes, format_duration
    from lifeboat.errors import UsageError
    from lifeboat.operations.backup import default_workers
    from lifeboat.operations.restore import RestoreOptions, restore_snapshot

    state: CliContext = ctx.obj
    out = state.output
    try:
        patterns = PathFilter.build(include or (), exclude or ())
    except ValueError as exc:
        raise UsageError(str(exc), hint=PATTERN_HINT) from None
    options = RestoreOptions(
        target=target, filter=patterns, force=force, dry_run=dry_run, workers=workers or default_workers()
    )
    repo = state.open_repository(read_only=no_lock)
    progress = Progress()
    with out.progress(progress, "restoring"):
        done = restore_snapshot(
            repo,
            snapshot,
            options,
            selection=snapshot_filter(source, host, tag, path_filter),
            use_lock=not no_lock,
            progress=progress,
            notify=out.notice,
        )
    result = done.result
    if state.json:
        out.emit_json({"snapshot": done.snapshot.id, "target": target, "dry_run": dry_run, **result.to_json()})
    else:
        verb = "would restore" if dry_run else "restored"
        out.line(
            f"{verb} {result.files} files, {result.dirs} directories, {result.links} links "
            f"({format_bytes(result.bytes)}) from snapshot {done.snapshot.short_id} to {target}"
            + ("" if dry_run else f" in {format_duration(progress.elapsed())}")
        )
    failure = result.failure()
    if failure is not None:
        out.error(failure)
        raise Exit(int(failure.exit_code))
