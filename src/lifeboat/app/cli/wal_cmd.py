"""Archive a WAL file (archive_command = 'lifeboat wal-push %p') or restore one
(restore_command = 'lifeboat wal-fetch %f %p'); see docs/postgres.md.

These commands serve ``--help`` and calls that did not come through the fast start
(:mod:`lifeboat.app.cli.walfast`, which runs before the command line is even imported).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from lifeboat.app.cli.framework import Argument, Context, Exit, Option
from lifeboat.app.cli.walcall import WalInvocation

if TYPE_CHECKING:
    from lifeboat.app.cli.context import CliContext


SourceOption = Annotated[str | None, Option("--source", "-s", help="The configured postgres source.")]
SpoolOption = Annotated[
    str | None,
    Option("--spool", help="Spool directory [env LIFEBOAT_WAL_SPOOL; default DATADIR/lifeboat_spool]."),
]
SyncOption = Annotated[bool, Option("--sync", help="Do the work in this process: no background worker.")]


def _invoke(ctx: Context, inv: WalInvocation) -> None:
    state: CliContext = ctx.obj
    inv.repo, inv.config, inv.verbose, inv.quiet = state.repo, state.config_path, state.verbose, state.quiet
    from lifeboat.app.cli.walrun import run

    code = run(inv)
    raise Exit(code)


def push_command(
    ctx: Context,
    path: Annotated[str, Argument(help="The WAL file's path (%p).")],
    source: SourceOption = None,
    spool: SpoolOption = None,
    queue_max: Annotated[
        str | None, Option("--queue-max", help="Drop WAL (loudly) when more than this is queued, e.g. 8GiB.")
    ] = None,
    sync: SyncOption = False,
) -> None:
    """Archive one WAL file (archive_command = 'lifeboat wal-push %p'); succeeds only once it is durable."""
    inv = WalInvocation("wal-push")
    inv.args, inv.source, inv.spool, inv.queue_max, inv.sync = [path], source, spool, queue_max, sync
    _invoke(ctx, inv)


def fetch_command(
    ctx: Context,
    name: Annotated[str, Argument(help="The WAL file's name (%f).")],
    path: Annotated[str, Argument(help="Where to put it (%p).")],
    source: SourceOption = None,
    spool: SpoolOption = None,
    sync: SyncOption = False,
) -> None:
    """Restore one WAL file (restore_command = 'lifeboat wal-fetch %f %p'): 0 restored, 1 not archived, 126 failed."""
    inv = WalInvocation("wal-fetch")
    inv.args, inv.source, inv.spool, inv.sync = [name, path], source, spool, sync
    _invoke(ctx, inv)
