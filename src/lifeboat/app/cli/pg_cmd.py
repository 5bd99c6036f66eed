"""PostgreSQL archiving: check it works, set it up, and see what the repository holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Exit, Option
from lifeboat.app.cli.options import LockWaitOpt
from lifeboat.app.cli.pg_options import DbnameOpt, HostOpt, PortOpt, SourceOpt, UserOpt

if TYPE_CHECKING:
    from lifeboat.operations.repo_access import AccessReport


def check(
    ctx: Context,
    source: SourceOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    user: UserOpt = None,
    dbname: DbnameOpt = None,
    no_round_trip: Annotated[bool, Option("--no-round-trip", help="Only check settings; do not switch WAL.")] = False,
    timeout: Annotated[
        str, Option("--timeout", metavar="DURATION", help="How long to wait for the round trip (e.g. 60s, 5min).")
    ] = "60s",
) -> None:
    """Verify wal_level, archive_mode, archive_command, the archiver, the repository as the server's
    OS user sees it, and a real round trip (exit 1 on failure)."""
    from lifeboat.app.cli.pg_options import connection, source_config
    from lifeboat.core.units import parse_duration
    from lifeboat.errors import LifeboatError, UsageError
    from lifeboat.operations.pg_check import check_postgres

    state: CliContext = ctx.obj
    try:
        wait = parse_duration(timeout).total_seconds()
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    config = source_config(state, source)
    report = check_postgres(
        connection(config, host, port, user, dbname),
        lambda: state.open_repository(read_only=True),
        round_trip=not no_round_trip,
        timeout=wait,
        probe_as=_access_as(state),
    )
    out = state.output
    if state.json:
        out.emit_json(report.to_json())
    else:
        for item in report.items:
            mark = "ok" if item.ok else ("WARN" if item.warning else "FAIL")
            out.line(f"{mark:>4}  {item.name}: {item.detail}")
            if not item.ok and item.hint:
                out.line(f"      hint: {item.hint}")
        out.line("archiving works" if report.ok else "archiving is NOT working")
    if not report.ok:
        failed = sum(1 for item in report.items if not item.ok and not item.warning)
        out.error(
            LifeboatError(
                f"archiving is not working: {failed} checks failed (listed above)",
                hint="each failed check above says what to fix; 'lifeboat pg setup' prints the settings",
            )
        )
        raise Exit(1)


def _access_as(state: CliContext) -> Callable[[str], AccessReport]:
    """``lifeboat pg access`` run as another OS user, on this command's repository and passphrase source."""

    def probe(os_user: str) -> AccessReport:
        import os

        from lifeboat.app.cli.context import ENV_CONFIG, ENV_PASSWORD_FILE, ENV_REPO
        from lifeboat.app.cli.pg_options import absolute_repo, lifeboat_program
        from lifeboat.errors import LifeboatError
        from lifeboat.operations.repo_access import AccessReport
        from lifeboat.sources.tools.lifeboat_as import LifeboatAs

        env: dict[str, str] = {}
        if state.repo:
            env[ENV_REPO] = absolute_repo(state.repo)
        if state.config_path:
            env[ENV_CONFIG] = os.path.abspath(state.config_path)
        if path := os.environ.get(ENV_PASSWORD_FILE):
            env[ENV_PASSWORD_FILE] = os.path.abspath(path)
        doc = LifeboatAs(os_user, lifeboat_program()).json(["pg", "access"], env)
        if "user" not in doc:
            raise LifeboatError(f"'lifeboat pg access' run as {os_user} failed: {doc.get('error', doc)}")
        return AccessReport.from_json(doc)

    return probe


def access(ctx: Context) -> None:
    """Can this OS user read and write the repository? 'pg check' runs it as the server's user (exit 14 if not)."""
    from lifeboat.operations.repo_access import check_access
    from lifeboat.repository.repo import Repository
    from lifeboat.storage.base import Backend
    from lifeboat.storage.registry import open_backend

    state: CliContext = ctx.obj
    url, repo_config = state.repository_target()

    def open_repository(backend: Backend) -> Repository:
        Repository.read_header(backend)
        return Repository.open(backend, state.passphrase(repo_config))

    backend = open_backend(url, env=state.environment(), options=repo_config.options if repo_config else None)
    try:
        report = check_access(backend, open_repository)
    finally:
        backend.close()
    out = state.output
    if state.json:
        out.emit_json(report.to_json())
    elif report.ok:
        checked = f" ({report.checked} files and directories checked)" if report.checked else ""
        out.line(f"{report.user} can read and write {report.location}{checked}")
    else:
        out.line(f"{report.user} cannot use {report.location}:")
        for problem in report.problems:
            out.line(f"  {problem.describe()}")
        if report.total_problems > len(report.problems):
            out.line(f"  and {report.total_problems - len(report.problems)} more")
        if report.error is not None and not (report.problems and report.permission_only):
            out.line(f"  {report.error.message}")
    if not report.ok:
        raise Exit(14 if report.permission_only or report.error is None else report.error.code)


def setup(
    ctx: Context,
    source: SourceOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    user: UserOpt = None,
    dbname: DbnameOpt = None,
    apply: Annotated[bool, Option("--apply", help="Write the settings with ALTER SYSTEM and reload.")] = False,
    queue_max: Annotated[
        str | None, Option("--queue-max", help="Put a queue limit into archive_command, e.g. 16GiB.")
    ] = None,
) -> None:
    """Print the settings archiving into this repository needs (or apply them with --apply)."""
    from lifeboat.app.cli.pg_options import connection, server_command, source_config
    from lifeboat.errors import UsageError
    from lifeboat.operations.pg_check import plan_setup
    from lifeboat.sources.postgres.recoveryconf import quote

    state: CliContext = ctx.obj
    config = source_config(state, source)
    extra: list[str] = []
    spool = config.wal_spool_dir if config else None
    if spool:
        extra += ["--spool", spool]
    limit = queue_max or (config.archive_queue_max if config else None)
    if limit:
        from lifeboat.core.units import parse_size

        try:
            parse_size(limit)
        except ValueError as exc:
            raise UsageError(f"--queue-max: {exc}") from None
        extra += ["--queue-max", limit]
    command, warnings = server_command(state, source, "wal-push", *extra, "%p")
    plan = plan_setup(connection(config, host, port, user, dbname), command, apply=apply)
    out = state.output
    for warning in warnings:
        out.info(f"warning: {warning}")
    if state.json:
        out.emit_json({**plan.to_json(), "archive_command": command, "warnings": warnings})
        return
    if not plan.changes:
        out.line("the server is already set up to archive into this repository")
        return
    out.line("# postgresql.conf settings for archiving into this repository:")
    for name, value in plan.changes.items():
        out.line(f"{name} = {quote(value)}")
    if plan.applied:
        out.line("applied with ALTER SYSTEM and reloaded")
        if plan.restart_needed:
            out.line(f"restart PostgreSQL for {', '.join(plan.restart_needed)} to take effect")
        out.line("then run 'lifeboat pg check'")
    else:
        out.line("# run again with --apply to write them with ALTER SYSTEM")


def info(
    ctx: Context,
    source: SourceOpt = None,
    system_id: Annotated[str | None, Option("--system-id", help="Only this database system.")] = None,
) -> None:
    """Base backups, archived WAL per timeline, gaps, and the recoverable window — the one that exists
    beside the one retention guarantees (exit 13 on a gap)."""
    from lifeboat.app.cli.render import local_time
    from lifeboat.core.units import format_bytes
    from lifeboat.errors import ExitCode, cli_flag, spell_options
    from lifeboat.operations.pg_info import pg_info

    state: CliContext = ctx.obj
    repo = state.open_repository(read_only=True, cached=True)
    config = state.config()
    clusters = pg_info(
        repo,
        system_id=system_id,
        source=source,
        retention=config.retention_for if config is not None else None,
        now=repo.clock(),
    )
    out = state.output
    damaged = any(c.damaged for c in clusters)
    if state.json:
        out.emit_json({"clusters": [c.to_json(cli_flag) for c in clusters]})
        if damaged:
            raise Exit(int(ExitCode.INTEGRITY))
        return
    if not clusters:
        out.line("the repository holds no PostgreSQL backups or WAL")
        return
    for cluster in clusters:
        out.line(f"database system {cluster.system_id}")
        out.line("  base backups:")
        rows = [
            [
                b.snapshot_id[:8],
                local_time(b.stop_time),
                b.method,
                str(b.timeline),
                f"{b.start_segment.name}..{b.stop_segment.name}",
                format_bytes(sum(int(d.get("size", 0)) for d in b.databases)),
            ]
            for b in cluster.backups
        ]
        if rows:
            out.table(
                ["    ID", "Consistent at", "Method", "TL", "WAL", "Databases"], [["    " + r[0], *r[1:]] for r in rows]
            )
        else:
            out.line("    none")
        out.line(f"  WAL archive: {cluster.wal_files} files, {format_bytes(cluster.wal_bytes)} stored")
        for timeline in cluster.timelines:
            origin = ""
            if timeline.parent:
                via = (
                    f", on timeline {timeline.branched_from}'s WAL"
                    if timeline.branched_from not in (None, timeline.parent)
                    else ""
                )
                origin = f" (from timeline {timeline.parent} at {timeline.switchpoint}{via})"
            elif timeline.timeline != 1 and not timeline.history_file:
                origin = " (no history file archived)"
            ranges = ", ".join(f"{r.first_segment.name}..{r.last_segment.name}" for r in timeline.ranges) or "-"
            live = "  <- live" if timeline.live else ""
            out.line(f"    timeline {timeline.timeline}{origin}: {ranges}{live}")
            if timeline.gaps:
                shown = ", ".join(timeline.gaps[:10]) + (" …" if len(timeline.gaps) > 10 else "")
                out.line(f"      GAP: {len(timeline.gaps)} missing: {shown}")
        window = cluster.window
        if window is None:
            out.line(
                "  recoverable: nothing (no base backup with its WAL)"
                if cluster.status != "unrestorable"
                else "  recoverable: NOTHING: no timeline to restore the base backups on (see the problems below)"
            )
        else:
            latest = local_time(window.latest_archived_at) if window.latest_archived_at else "its end"
            out.line(
                f"  recoverable on timeline {window.timeline}: from {local_time(window.earliest_time)} "
                f"(LSN {window.earliest_lsn}) to {window.latest_lsn} (WAL {window.latest_wal}, archived {latest})"
            )
            if window.blocked_by:
                out.line(f"    later WAL exists but {window.blocked_by} is missing: recovery cannot pass it")
        if cluster.guaranteed is not None:
            promised = cluster.guaranteed
            out.line(
                f"  guaranteed by retention ({', '.join(promised.sources)}: {promised.policy}): "
                f"recoverable from {local_time(promised.start)} to now"
            )
        for warning in cluster.warnings:
            out.line(f"  WARNING: {warning}")
        if cluster.gap:
            out.line(
                f"  GAP after the newest base backup: {cluster.gap} is missing, so recovery cannot reach "
                "the end of the archived WAL"
            )
        for note in cluster.notes:
            out.line(f"  note: {spell_options(note, cli_flag)}")
        for problem in cluster.problems:
            out.line(f"  problem: {problem}")
    if damaged:
        raise Exit(int(ExitCode.INTEGRITY))


def prune_wal(
    ctx: Context,
    system_id: Annotated[str | None, Option("--system-id", help="Only this database system.")] = None,
    dry_run: Annotated[bool, Option("--dry-run", "-n", help="Show what would be removed.")] = False,
    lock_wait: LockWaitOpt = None,
) -> None:
    """Remove archived WAL older than the oldest base backup (run after 'forget')."""
    from lifeboat.core.units import format_bytes
    from lifeboat.operations.pg_expire import expire_wal

    state: CliContext = ctx.obj
    results = expire_wal(
        state.open_repository(), system_id=system_id, dry_run=dry_run, lock_wait=state.lock_wait(lock_wait)
    )
    if state.json:
        state.output.emit_json([r.to_json() for r in results])
        return
    verb = "would remove" if dry_run else "removed"
    for r in results:
        state.output.line(
            f"system {r.system_id}: {verb} {len(r.removed)} WAL files, {format_bytes(r.removed_bytes)}; "
            f"kept {r.kept} from {r.keep_from} on ({r.reason})"
        )
        for span in r.ranges:
            state.output.line(f"  timeline {span.timeline}: {span.first} .. {span.last} ({span.files} files)")
    if not results:
        state.output.line("nothing to do: no base backups")


COMMANDS = {"check": check, "access": access, "setup": setup, "info": info, "prune-wal": prune_wal}
