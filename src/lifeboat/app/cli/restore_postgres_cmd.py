"""Restore a PostgreSQL cluster to a point in time: 'lifeboat restore postgres --target-dir DIR'."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Option
from lifeboat.app.cli.options import PlanOpt
from lifeboat.app.cli.pg_options import SourceOpt

if TYPE_CHECKING:
    from lifeboat.operations.pitr import PgRestoreRequest


def command(
    ctx: Context,
    target_dir: Annotated[str, Option("--target-dir", "-D", help="Where to restore (empty or absent).")],
    source: SourceOpt = None,
    time: Annotated[str | None, Option("--time", help="Recover to this moment, e.g. '2026-05-01 12:34:56+02'.")] = None,
    lsn: Annotated[str | None, Option("--lsn", help="Recover to this WAL position, e.g. 0/3000060.")] = None,
    xid: Annotated[int | None, Option("--xid", help="Recover to the commit of this transaction.")] = None,
    name: Annotated[str | None, Option("--name", help="Recover to this restore point.")] = None,
    immediate: Annotated[bool, Option("--immediate", help="Stop as soon as the base backup is consistent.")] = False,
    exclusive: Annotated[
        bool, Option("--exclusive", help="Stop just before the target instead of just after it.")
    ] = False,
    timeline: Annotated[str, Option("--timeline", help="latest, current, or a timeline number.")] = "latest",
    snapshot: Annotated[str | None, Option("--snapshot", help="Use this base backup instead of choosing one.")] = None,
    system_id: Annotated[str | None, Option("--system-id", help="The database system to restore.")] = None,
    tablespace: Annotated[
        list[str] | None, Option("--tablespace", help="Put a tablespace elsewhere: OID_OR_NAME=DIR (repeatable).")
    ] = None,
    target_action: Annotated[
        str, Option("--target-action", help="At the target: promote, pause or shutdown.")
    ] = "promote",
    archive: Annotated[
        bool,
        Option(
            "--archive",
            help="Keep archive_mode: the promoted copy archives its new timeline into this repository "
            "(a disaster restore that replaces the lost server). Default: the copy does not archive.",
        ),
    ] = False,
    archive_off: Annotated[
        bool, Option("--archive-off", help="archive_mode=off in the copy: the default, kept for scripts.")
    ] = False,
    start: Annotated[bool, Option("--start", help="Start the cluster and wait until it is promoted.")] = False,
    port: Annotated[int | None, Option("--port", help="Port of the restored cluster.")] = None,
    start_timeout: Annotated[
        str, Option("--start-timeout", help="How long --start waits for recovery (e.g. 2h).")
    ] = "24h",
    force: Annotated[
        bool, Option("--force", help="Empty a non-empty target (even a running cluster's) first.")
    ] = False,
    workers: Annotated[
        int | None, Option("--workers", "-j", metavar="N", min=1, max=64, help="Parallel restore workers.")
    ] = None,
    plan: PlanOpt = False,
) -> None:
    from lifeboat.app.cli.pg_options import server_command, source_config
    from lifeboat.core.basebackup import RestoreTarget
    from lifeboat.core.units import parse_duration
    from lifeboat.core.wal import Lsn
    from lifeboat.errors import UsageError
    from lifeboat.operations.backup import default_workers
    from lifeboat.operations.pitr import PgRestoreRequest

    state: CliContext = ctx.obj
    out = state.output
    given = [k for k, v in (("--time", time), ("--lsn", lsn), ("--xid", xid), ("--name", name)) if v is not None]
    if immediate:
        given.append("--immediate")
    if len(given) > 1:
        raise UsageError(f"give one recovery target, not {' and '.join(given)}")
    if archive and archive_off:
        raise UsageError("give --archive or --archive-off, not both")
    try:
        target = RestoreTarget(
            time=_parse_time(time) if time else None,
            lsn=Lsn.parse(lsn) if lsn else None,
            xid=xid,
            name=name,
            immediate=immediate,
            inclusive=not exclusive,
        )
        timeout = parse_duration(start_timeout).total_seconds()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    mapping: dict[str, str] = {}
    for item in tablespace or ():
        key, sep, directory = item.partition("=")
        if not sep or not key or not directory:
            raise UsageError(f"--tablespace {item!r}: use OID_OR_NAME=DIRECTORY")
        mapping[key] = directory
    config = source_config(state, source)
    restore_command, warnings = server_command(state, source, "wal-fetch", "%f", "%p")
    for warning in warnings:
        out.info(f"warning: {warning}")
    request = PgRestoreRequest(
        target_dir=target_dir,
        restore_command=restore_command,
        target=target,
        timeline=timeline,
        snapshot=snapshot,
        system_id=system_id,
        source=source if config is not None else None,
        tablespace_map=mapping,
        force=force,
        workers=workers or default_workers(),
        target_action=target_action,
        archive=archive,
        port=port,
        start=start,
        start_timeout=timeout,
    )
    recover(state, request, plan=plan)


def recover(state: CliContext, request: PgRestoreRequest, *, plan: bool = False) -> None:
    """Run the point-in-time recovery ``request`` and print its report (``restore postgres``,
    and ``restore --source NAME`` for a kind that restores by recovery); with ``plan``, show
    what it would do instead (nothing written) and end the command."""
    from lifeboat.core.progress import Progress
    from lifeboat.core.units import format_bytes, format_duration
    from lifeboat.errors import cli_flag, spell_options
    from lifeboat.operations.pitr import restore_postgres

    out = state.output
    target = request.target
    repo = state.open_repository()
    if plan:
        from lifeboat.app.cli.restore_plan_view import show_plan
        from lifeboat.operations.records import record_cache
        from lifeboat.operations.restore_plan import plan_postgres

        show_plan(state, plan_postgres(repo, request, records=record_cache(state.state_directory(), repo)))
    progress = Progress()
    with out.progress(progress, "restoring PostgreSQL"):
        result = restore_postgres(repo, request, progress=progress, notify=out.notice)
    if state.json:
        out.emit_json(result.to_json(cli_flag))
        return
    backup = result.backup
    for warning in result.warnings:
        out.info(f"warning: {spell_options(warning, cli_flag)}")
    out.line(
        f"restored base backup {backup.snapshot_id[:8]} "
        f"(consistent at {backup.stop_time.isoformat(timespec='seconds')}, "
        f"timeline {backup.timeline}) to {result.target_dir}: {result.restored.files} files, "
        f"{format_bytes(result.restored.bytes)} in {format_duration(result.restore_seconds)}"
    )
    why = {
        "live": " (the timeline whose WAL reached the repository most recently)",
        "newest-backup": " (the newest base backup's; no WAL is archived)",
    }.get(result.timeline_rule, "")
    out.line(
        f"recovery target: {target.describe()} on timeline {result.timeline}{why}; "
        f"WAL checked up to {result.wal_checked_until}"
    )
    out.line(
        "archiving: on in the copy: once promoted it archives its new timeline into this repository"
        if result.archive
        else "archiving: off in the copy (archive_mode=off); give --archive when it replaces the lost server"
    )
    if result.recovery is None:
        out.line("start the cluster to recover (recovery.signal and the settings are in place)")
        return
    recovery = result.recovery
    out.line(
        f"recovery {recovery.state} after {format_duration(recovery.seconds)}"
        + (f" on timeline {recovery.timeline}" if recovery.timeline else "")
        + (f" ({recovery.stop})" if recovery.stop else "")
        + (f"; listening on port {recovery.port}" if recovery.port else "")
    )
    out.line(f"total time to recover: {format_duration(result.total_seconds)}")


def _parse_time(text: str) -> datetime:
    """An ISO-8601-ish timestamp; without a zone it is local time."""
    cleaned = text.strip().replace("T", " ")
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    moment = datetime.fromisoformat(cleaned)
    return moment if moment.tzinfo else moment.astimezone()
