"""Write one file of a snapshot to standard output."""

from __future__ import annotations

import sys
from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context
from lifeboat.app.cli.options import HostOpt, NoLockOpt, PathOpt, SourceOpt, TagOpt, snapshot_filter


def command(
    ctx: Context,
    snapshot: Annotated[str, Argument(help="Snapshot id prefix or 'latest'.")],
    path: Annotated[str, Argument(help="Path of the file inside the snapshot.")],
    source: SourceOpt = None,
    host: HostOpt = None,
    tag: TagOpt = None,
    path_filter: PathOpt = None,
    no_lock: NoLockOpt = False,
) -> None:
    from lifeboat.errors import UsageError
    from lifeboat.operations.restore import dump_file

    state: CliContext = ctx.obj
    if state.json:
        raise UsageError(
            "dump writes the file's own bytes to stdout; it has no --json form",
            hint="run it without --json and redirect stdout to a file; 'lifeboat --json ls' describes files",
        )
    repo = state.open_repository(read_only=no_lock)
    dump_file(
        repo,
        snapshot,
        path,
        sys.stdout.buffer,
        selection=snapshot_filter(source, host, tag, path_filter),
        use_lock=not no_lock,
    )
