"""List the files of a snapshot (``latest``, an id prefix), optionally below a path."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Option
from lifeboat.app.cli.options import HostOpt, NoLockOpt, PathOpt, SourceOpt, TagOpt, snapshot_filter


def command(
    ctx: Context,
    snapshot: Annotated[str, Argument(help="Snapshot id prefix or 'latest'.")],
    path: Annotated[str, Argument(help="Only below this path.")] = "/",
    long: Annotated[bool, Option("--long", "-l", help="Show mode, owner, size and time.")] = False,
    recursive: Annotated[bool, Option("--recursive/--no-recursive", help="Descend into directories.")] = True,
    source: SourceOpt = None,
    host: HostOpt = None,
    tag: TagOpt = None,
    path_filter: PathOpt = None,
    no_lock: NoLockOpt = False,
) -> None:
    from lifeboat.app.cli.render import long_listing
    from lifeboat.operations.browse import list_entries
    from lifeboat.operations.read_lock import read_lock
    from lifeboat.operations.restore import resolve

    state: CliContext = ctx.obj
    repo = state.open_repository(read_only=no_lock)
    with read_lock(repo, use_lock=not no_lock):
        chosen = resolve(repo, snapshot, snapshot_filter(source, host, tag, path_filter))
        entries = list_entries(repo, chosen.tree, path, recursive=recursive)
        if state.json:
            state.output.emit_json(
                {
                    "snapshot": chosen.id,
                    "entries": [
                        {"path": p, **{k: v for k, v in n.to_json().items() if k not in ("name", "content")}}
                        for p, n in entries
                    ],
                }
            )
            return
        for entry_path, node in entries:
            state.output.raw(long_listing(entry_path, node) if long else entry_path)
