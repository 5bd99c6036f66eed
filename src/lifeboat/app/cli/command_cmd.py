"""Back up a program's output ('lifeboat backup command -- PROGRAM ARGS…') and stream a
stored file into a program ('lifeboat restore command SNAPSHOT -- PROGRAM ARGS…')."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Option
from lifeboat.app.cli.options import (
    HostOpt,
    LockWaitOpt,
    NoLockOpt,
    PlanOpt,
    RecordHostOpt,
    SnapshotTagOpt,
    TagOpt,
    WorkersOpt,
)

ProgramArg = Annotated[
    list[str] | None, Argument(help="The program and its arguments, after '--'.", metavar="-- PROGRAM [ARGS]...")
]


def backup(
    ctx: Context,
    program: ProgramArg = None,
    name: Annotated[
        str | None, Option("--name", metavar="NAME", help="File name of the output in the snapshot.")
    ] = None,
    source: Annotated[
        str | None,
        Option("--source", "-s", metavar="SOURCE", help="A configured command source, or a label (default: NAME)."),
    ] = None,
    tag: SnapshotTagOpt = None,
    allow_empty: Annotated[
        bool, Option("--allow-empty", help="Save a snapshot even if the program writes nothing.")
    ] = False,
    host: RecordHostOpt = None,
    lock_wait: LockWaitOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Run a program and back up its standard output; saved only if it exits 0."""
    state: CliContext = ctx.obj
    back_up(
        state,
        argv=tuple(program or ()),
        name=name,
        source=source,
        tags=tuple(tag or ()),
        allow_empty=allow_empty,
        host=host,
        lock_wait=lock_wait,
        workers=workers,
    )


def back_up(
    state: CliContext,
    *,
    argv: tuple[str, ...],
    name: str | None,
    source: str | None,
    tags: tuple[str, ...],
    allow_empty: bool,
    host: str | None,
    lock_wait: str | None,
    workers: int | None,
) -> None:
    """``backup command``: the program given, or the configured command source's."""
    from lifeboat.app.cli.backup_cmd import back_up as run
    from lifeboat.config.resolve import expect_kind
    from lifeboat.errors import UsageError
    from lifeboat.sources.base import BackupOptions

    configured = expect_kind(state.config(), source, "command")
    if not argv and configured is None:
        raise UsageError("no program to run", hint="lifeboat backup command --name NAME -- PROGRAM ARGS…")
    if not name and configured is None:
        raise UsageError("--name is required", hint="the file name the program's output is kept under, e.g. appdb")
    settings: dict[str, object] = {"command": argv, "name": name}
    if allow_empty:
        settings["allow_empty"] = True
    options = BackupOptions(
        source=source or "",
        tags=tags,
        hostname=host,
        workers=workers,
        settings={key: value for key, value in settings.items() if value},
        environment=state.environment(),
    )
    run(state, options, kind="command", lock_wait=lock_wait)


def restore(
    ctx: Context,
    snapshot: Annotated[str, Argument(help="Snapshot id prefix, 'latest', or ID:/path.")],
    program: ProgramArg = None,
    path: Annotated[
        str | None, Option("--path", metavar="FILE", help="The file inside the snapshot (if it holds several).")
    ] = None,
    source: Annotated[
        list[str] | None, Option("--source", "-s", metavar="SOURCE", help="Only this source (repeatable).")
    ] = None,
    host: HostOpt = None,
    tag: TagOpt = None,
    no_lock: NoLockOpt = False,
    plan: PlanOpt = False,
) -> None:
    """Stream a stored file into a program's standard input; fails unless it takes it all and exits 0."""
    from lifeboat.app.cli.restore_cmd import restore_through
    from lifeboat.config.resolve import configured_source
    from lifeboat.errors import UsageError
    from lifeboat.sources.base import IntoProgram

    state: CliContext = ctx.obj
    argv = tuple(program or ())
    only = source[0] if source and len(source) == 1 else None
    entry = configured_source(state.config(), only)
    configured = entry if entry is not None and entry.type == "command" else None
    if not argv and (configured is None or not configured.restore_command):
        raise UsageError(
            "no program to restore into",
            hint="lifeboat restore command SNAPSHOT -- PROGRAM ARGS… ('lifeboat dump' writes the file to stdout)",
        )
    into = IntoProgram(argv=argv or None, path=path or "", stdout_to_stderr=state.json)
    done = restore_through(
        state,
        "command",
        snapshot,
        into,
        source=source,
        host=host,
        tag=tag,
        no_lock=no_lock,
        configured=configured,
        plan=plan,
    )
    if state.json:
        state.output.emit_json(done.to_json())
        return
    state.output.info(done.result.describe())
