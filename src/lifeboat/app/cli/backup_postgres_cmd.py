"""Take a PostgreSQL base backup: 'lifeboat backup postgres' (method local or stream)."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Exit, Option
from lifeboat.app.cli.pg_options import DbnameOpt, HostOpt, PortOpt, SourceOpt, UserOpt


def command(
    ctx: Context,
    source: SourceOpt = None,
    data_dir: Annotated[
        str | None, Option("--data-dir", "-D", help="The data directory (method local; default: the server's).")
    ] = None,
    method: Annotated[
        str | None, Option("--method", help="local: read the data directory here; stream: pg_basebackup.")
    ] = None,
    host: HostOpt = None,
    port: PortOpt = None,
    user: UserOpt = None,
    dbname: DbnameOpt = None,
    tag: Annotated[list[str] | None, Option("--tag", help="Tag the snapshot (repeatable).")] = None,
    label: Annotated[str | None, Option("--label", help="The backup label PostgreSQL records.")] = None,
    verify_checksums: Annotated[
        bool, Option("--verify-checksums", help="Verify page checksums; report damaged pages.")
    ] = False,
    full: Annotated[
        bool, Option("--full", help="Read every file, even those unchanged since the last backup.")
    ] = False,
    block_size: Annotated[
        str | None, Option("--block-size", help="Fixed block size of relation files, e.g. 128KiB.")
    ] = None,
    archive_wait: Annotated[
        str | None,
        Option("--archive-wait", help="How long to wait for the backup's WAL to be archived (0: don't)."),
    ] = None,
    workers: Annotated[
        int | None, Option("--workers", "-j", metavar="N", min=1, max=64, help="Parallel readers and compressors.")
    ] = None,
    lock_wait: Annotated[str | None, Option("--lock-wait", help="Wait this long for a lock (e.g. 5m).")] = None,
) -> None:
    from lifeboat.app.cli.pg_options import connection, source_config
    from lifeboat.app.cli.render import backup_summary
    from lifeboat.core.progress import Progress
    from lifeboat.core.units import format_bytes, parse_duration, parse_size
    from lifeboat.errors import ExitCode, PartialBackup, UsageError
    from lifeboat.operations.backup import default_workers
    from lifeboat.operations.pg_backup import PgBackupRequest, backup_postgres

    state: CliContext = ctx.obj
    out = state.output
    config = source_config(state, source)
    chosen_method = method or (config.method if config else "local")
    if chosen_method not in ("local", "stream"):
        raise UsageError(f"--method {chosen_method!r}: use local or stream")
    try:
        size = (
            parse_size(block_size)
            if block_size
            else (parse_size(config.block_size) if config and config.block_size else None)
        )
        wait = parse_duration(archive_wait or (config.archive_wait if config else "5min")).total_seconds()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    request = PgBackupRequest(
        method=chosen_method,
        connection=connection(config, host, port, user, dbname),
        data_directory=data_dir or (config.data_directory if config else None),
        source=source or "",
        tags=tuple(config.tags if config else ()) + tuple(tag or ()),
        block_size=size,
        verify_checksums=verify_checksums or bool(config and config.verify_checksums),
        workers=workers or (config.workers if config and config.workers else default_workers()),
        archive_wait=wait,
        lock_wait=state.lock_wait(lock_wait),
        label=label,
        full=full,
    )
    repo = state.open_repository()
    progress = Progress()
    with out.progress(progress, f"backing up PostgreSQL ({chosen_method})"):
        result = backup_postgres(repo, request, progress=progress, notify=out.notice)
    if state.json:
        out.emit_json(result.to_json())
    else:
        backup = result.backup
        for line in backup_summary(result.snapshot.summary, result.snapshot):
            out.line(line)
        out.line(
            f"PostgreSQL {backup.version}, system {backup.system_id}, timeline {backup.timeline}: "
            f"WAL {backup.start_segment.name}..{backup.stop_segment.name} (LSN {backup.start_lsn}..{backup.stop_lsn})"
        )
        sizes = ", ".join(f"{d['name']} {format_bytes(int(d['size']))}" for d in backup.databases)
        out.line(f"databases: {sizes}")
        if result.wal_wait:
            out.line(f"its WAL was archived {result.wal_wait:.1f}s after the backup stopped")
        if backup.checksum_errors:
            out.line(f"DAMAGED PAGES: {len(backup.checksum_errors)} pages failed their checksum (listed above)")
    if result.backup.checksum_errors:
        out.error(
            PartialBackup(
                f"snapshot {result.snapshot.short_id} holds {len(result.backup.checksum_errors)} pages that failed"
                " their checksum (listed above)",
                hint="the backup was saved as read; check the server's storage and the tables those pages belong to",
            )
        )
        raise Exit(int(ExitCode.PARTIAL))
