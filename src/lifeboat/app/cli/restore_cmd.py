"""Restore a snapshot (or ID:/sub/path) into a directory, verifying every byte; or, with
--source NAME of a configured source that restores into a program (a command source's
restore_command), into that program; or, for a source restored by recovery (postgres), by
point-in-time recovery into --target as its data directory (what 'restore postgres' does).

Each kind's own restore: 'restore postgres', 'restore pg-dump', 'restore mariadb',
'restore redis', 'restore sqlite', 'restore ldap', 'restore command' (each with --help)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Exit, Option
from lifeboat.app.cli.options import (
    HostOpt,
    NoLockOpt,
    PathOpt,
    PlanOpt,
    SourceOpt,
    TagOpt,
    WorkersOpt,
    snapshot_filter,
)

if TYPE_CHECKING:
    from lifeboat.operations.restore import SourceRestore
    from lifeboat.sources.base import RestoreDestination


def command(
    ctx: Context,
    snapshot: Annotated[str, Argument(help="Snapshot id prefix, 'latest', or ID:/sub/path.")],
    target: Annotated[
        str | None,
        Option(
            "--target",
            "-t",
            metavar="DIR",
            help="Directory to restore into (not needed for a --source that restores into a program).",
        ),
    ] = None,
    include: Annotated[
        list[str] | None, Option("--include", "-i", metavar="PATTERN", help="Only matching paths.")
    ] = None,
    exclude: Annotated[
        list[str] | None, Option("--exclude", "-e", metavar="PATTERN", help="Leave out matching paths.")
    ] = None,
    dry_run: Annotated[bool, Option("--dry-run", help="Show what would be restored.")] = False,
    plan: PlanOpt = False,
    force: Annotated[bool, Option("--force", help="Restore into a non-empty directory, replacing files.")] = False,
    source: SourceOpt = None,
    host: HostOpt = None,
    tag: TagOpt = None,
    path_filter: PathOpt = None,
    no_lock: NoLockOpt = False,
    workers: WorkersOpt = None,
) -> None:
    from lifeboat.config.resolve import configured_source
    from lifeboat.core.patterns import PATTERN_HINT, PathFilter
    from lifeboat.core.units import format_bytes, format_duration
    from lifeboat.errors import UsageError
    from lifeboat.operations.snapshots import default_workers
    from lifeboat.sources.base import IntoDirectory, IntoProgram, RestoreInto
    from lifeboat.sources.files.restorer import RestoreResult
    from lifeboat.sources.registry import source_kind

    state: CliContext = ctx.obj
    out = state.output
    only = source[0] if source and len(source) == 1 else None
    entry = configured_source(state.config(), only)
    recovered = source_kind(entry.type, key=f"sources.{only}.type") if entry is not None else None
    if target is not None and recovered is not None and RestoreInto.RECOVERY in recovered.restores_into:
        if include or exclude or dry_run or host or tag or path_filter:
            raise UsageError(
                f"source {only!r} is restored by point-in-time recovery: it takes no "
                "--include, --exclude, --dry-run, --host, --tag or --path",
                hint="'lifeboat restore postgres' chooses a recovery target; 'lifeboat restore ID --target DIR' "
                "without --source lays a snapshot's files down",
            )
        _recover(state, only, snapshot, target, force=force, workers=workers, plan=plan)
        return
    if target is None:
        kind = source_kind(entry.type, key=f"sources.{only}.type") if entry is not None else None
        if kind is None or RestoreInto.DIRECTORY in kind.restores_into:
            raise UsageError(
                "restore: missing option --target",
                hint="give the directory to restore into; a --source that restores into a program needs none",
            )
        into_program = IntoProgram(stdout_to_stderr=state.json)
        kind.check_restore(into_program)  # a kind that restores otherwise says how
        done = restore_through(
            state,
            kind.name,
            snapshot,
            into_program,
            source=source,
            host=host,
            tag=tag,
            no_lock=no_lock,
            configured=entry,
            plan=plan,
        )
        if state.json:
            out.emit_json(done.to_json())
        else:
            out.info(done.result.describe())
        return
    try:
        patterns = PathFilter.build(include or (), exclude or ())
    except ValueError as exc:
        raise UsageError(str(exc), hint=PATTERN_HINT) from None
    into = IntoDirectory(
        path=target, filter=patterns, force=force, dry_run=dry_run, workers=workers or default_workers()
    )
    # Any snapshot's tree can be laid down in a directory, whatever kind made it.
    done = restore_through(
        state, "files", snapshot, into, source=source, host=host, tag=tag, path=path_filter, no_lock=no_lock, plan=plan
    )
    result = done.result
    assert isinstance(result, RestoreResult)
    if state.json:
        out.emit_json({"snapshot": done.snapshot.id, "target": target, "dry_run": dry_run, **result.to_json()})
    else:
        verb = "would restore" if dry_run else "restored"
        out.line(
            f"{verb} {result.files} files, {result.dirs} directories, {result.links} links "
            f"({format_bytes(result.bytes)}) from snapshot {done.snapshot.short_id} to {target}"
            + ("" if dry_run else f" in {format_duration(done.seconds)}")
        )
    failure = result.failure()
    if failure is not None:
        out.error(failure)
        raise Exit(int(failure.exit_code))


def _recover(
    state: CliContext, source: str | None, ref: str, target: str, *, force: bool, workers: int | None, plan: bool
) -> None:
    """``restore --source NAME REF --target DIR`` of a kind restored by recovery: the use case
    of ``restore postgres --source NAME --target-dir DIR`` with its defaults."""
    from lifeboat.app.cli.pg_options import server_command
    from lifeboat.app.cli.restore_postgres_cmd import recover
    from lifeboat.operations.pitr import recovery_request
    from lifeboat.operations.snapshots import default_workers

    restore_command, warnings = server_command(state, source, "wal-fetch", "%f", "%p")
    for warning in warnings:
        state.output.info(f"warning: {warning}")
    request = recovery_request(
        ref, target, restore_command=restore_command, source=source, force=force, workers=workers or default_workers()
    )
    recover(state, request, plan=plan)


def restore_through(
    state: CliContext,
    kind: str,
    ref: str,
    into: RestoreDestination,
    *,
    source: list[str] | None = None,
    host: list[str] | None = None,
    tag: list[str] | None = None,
    path: list[str] | None = None,
    no_lock: bool = False,
    configured: Any = None,
    kinds: tuple[str, ...] = (),
    plan: bool = False,
) -> SourceRestore:
    """Restore ``ref`` through the kind ``kind`` into ``into``: every ``restore`` command ends here.
    ``kinds``: ``latest`` means the newest snapshot of these kinds (a kind that reads only its own).
    ``plan`` (``--plan``): show what the restore would do instead, and end the command (exit 0
    when feasible, else the restore's own error)."""
    import contextlib
    from dataclasses import replace

    from lifeboat.app.cli.eventview import viewed
    from lifeboat.app.cli.interrupts import programs_stop_with_us
    from lifeboat.operations.restore import restore_source
    from lifeboat.sources.registry import source_kind

    chosen = source_kind(kind)
    chosen.check_restore(into)
    if configured is not None and configured.repository and not state.repo:
        state.repo = configured.repository
    repo = state.open_repository(read_only=no_lock)
    if plan:
        from lifeboat.app.cli.restore_plan_view import show_plan
        from lifeboat.operations.records import record_cache
        from lifeboat.operations.restore import plan_source

        only = source[0] if source and len(source) == 1 else None
        show_plan(
            state,
            plan_source(
                repo,
                chosen,
                ref,
                into,
                selection=replace(snapshot_filter(source, host, tag, path), kinds=kinds),
                use_lock=not no_lock,
                config=configured,
                environment=state.environment(),
                source=only,
                records=record_cache(state.state_directory(), repo),
            ),
        )
    stops = programs_stop_with_us() if chosen.runs_programs else contextlib.nullcontext()
    with stops, viewed(state.output, style=state.progress_style, signals=state.signals) as (events, _view):
        return restore_source(
            repo,
            chosen,
            ref,
            into,
            selection=replace(snapshot_filter(source, host, tag, path), kinds=kinds),
            use_lock=not no_lock,
            events=events,
            config=configured,
            environment=state.environment(),
        )
