"""Take a PostgreSQL base backup: 'lifeboat backup postgres' (method local or stream)."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Option
from lifeboat.app.cli.options import LockWaitOpt, SnapshotTagOpt
from lifeboat.app.cli.pg_options import DbnameOpt, HostOpt, PortOpt, SourceOpt, UserOpt
from lifeboat.core.defaults import ARCHIVE_WAIT


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
    tag: SnapshotTagOpt = None,
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
        Option(
            "--archive-wait",
            help=f"How long to wait for the backup's WAL to be archived (0: don't; default {ARCHIVE_WAIT}).",
        ),
    ] = None,
    workers: Annotated[
        int | None, Option("--workers", "-j", metavar="N", min=1, max=64, help="Parallel readers and compressors.")
    ] = None,
    lock_wait: LockWaitOpt = None,
) -> None:
    from lifeboat.app.cli.backup_cmd import back_up
    from lifeboat.app.cli.pg_options import source_config
    from lifeboat.sources.base import BackupOptions

    state: CliContext = ctx.obj
    source_config(state, source)  # a --source must name a configured postgres source
    given = {
        "data_directory": data_dir,
        "method": method,
        "host": host,
        "port": port,
        "user": user,
        "dbname": dbname,
        "block_size": block_size,
        "verify_checksums": verify_checksums,
        "archive_wait": archive_wait,
        "label": label,
        "full": full,
    }
    options = BackupOptions(
        source=source or "",
        tags=tuple(tag or ()),
        workers=workers,
        settings={key: value for key, value in given.items() if value is not None},
        environment=state.environment(),
    )
    back_up(state, options, kind="postgres", lock_wait=lock_wait)
