"""Back up a program's output ('lifeboat backup command -- PROGRAM ARGS…') and stream a
stored file into a program ('lifeboat restore command SNAPSHOT -- PROGRAM ARGS…')."""

from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING, Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Option
from lifeboat.app.cli.options import HostOpt, NoLockOpt, TagOpt, WorkersOpt, snapshot_filter

if TYPE_CHECKING:
    from lifeboat.config.model import CommandSourceConfig
    from lifeboat.sources.tools.program import StderrSink

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
    tag: Annotated[list[str] | None, Option("--tag", metavar="TAG", help="Tag the snapshot (repeatable).")] = None,
    allow_empty: Annotated[
        bool, Option("--allow-empty", help="Save a snapshot even if the program writes nothing.")
    ] = False,
    host: Annotated[str | None, Option("--host", metavar="HOST", help="Record this host name.")] = None,
    lock_wait: Annotated[
        str | None, Option("--lock-wait", metavar="DURATION", help="Wait this long for a lock (e.g. 5m).")
    ] = None,
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


def configured_command(state: CliContext, source: str | None) -> CommandSourceConfig | None:
    """The configured command source called ``source``; None when no source of that name is configured."""
    from lifeboat.errors import UsageError

    config = state.config()
    found = config.sources.get(source) if config is not None and source else None
    if found is None:
        return None
    if found.type != "command":
        kind = "" if found.type == "files" else f" {found.type}"
        raise UsageError(
            f"source {source!r} is a {found.type} source", hint=f"run 'lifeboat backup{kind} --source {source}'"
        )
    return found


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
    """``backup command`` and ``backup --source NAME`` of a configured command source."""
    from lifeboat.app.cli.interrupts import programs_stop_with_us
    from lifeboat.app.cli.render import backup_summary
    from lifeboat.core.progress import Progress
    from lifeboat.errors import UsageError
    from lifeboat.operations.backup import default_workers
    from lifeboat.operations.command import CommandBackupRequest, backup_command
    from lifeboat.sources.command.spec import ProgramSpec
    from lifeboat.sources.stream import check_stream_name

    out = state.output
    configured = configured_command(state, source)
    extra_env: dict[str, str] = {}
    if configured is not None:
        argv = argv or tuple(configured.command)
        name = name or configured.name or source
        tags = tuple(configured.tags) + tags
        allow_empty = allow_empty or configured.allow_empty
        extra_env = dict(configured.env)
        if configured.repository and not state.repo:
            state.repo = configured.repository
    if not argv:
        raise UsageError("no program to run", hint="lifeboat backup command --name NAME -- PROGRAM ARGS…")
    if not name:
        raise UsageError("--name is required", hint="the file name the program's output is kept under, e.g. appdb")
    check_stream_name(name)
    request = CommandBackupRequest(
        name=name,
        producer=ProgramSpec(argv, state.program_environment(extra_env)),
        source=source or "",
        tags=tags,
        allow_empty=allow_empty,
        lock_wait=state.lock_wait(lock_wait),
        workers=workers or default_workers(),
        hostname=host or socket.gethostname(),
    )
    repo = state.open_repository()
    progress = Progress()
    with programs_stop_with_us(), out.progress(progress, f"backing up the output of {argv[0]}"):
        result = backup_command(repo, request, progress=progress, on_stderr=_stderr_sink(state))
    if state.json:
        out.emit_json(result.to_json())
        return
    for line in backup_summary(result.snapshot.summary, result.snapshot):
        out.line(line)
    ended = result.snapshot.extra["command"]
    out.line(f"{argv[0]} exited 0; the end of its standard error ({ended['stderr_bytes']} bytes) is in the snapshot")


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
) -> None:
    """Stream a stored file into a program's standard input; fails unless it takes it all and exits 0."""
    from lifeboat.app.cli.interrupts import programs_stop_with_us
    from lifeboat.core.progress import Progress
    from lifeboat.core.units import format_bytes
    from lifeboat.errors import UsageError
    from lifeboat.operations.command import restore_command
    from lifeboat.sources.command.spec import ProgramSpec

    state: CliContext = ctx.obj
    out = state.output
    argv = tuple(program or ())
    extra_env: dict[str, str] = {}
    config = state.config()
    configured = config.sources.get(source[0]) if config is not None and source and len(source) == 1 else None
    if configured is not None and configured.type == "command":
        argv = argv or tuple(configured.restore_command or ())
        extra_env = dict(configured.env)
        if configured.repository and not state.repo:
            state.repo = configured.repository
    if not argv:
        raise UsageError(
            "no program to restore into",
            hint="lifeboat restore command SNAPSHOT -- PROGRAM ARGS… ('lifeboat dump' writes the file to stdout)",
        )
    consumer = ProgramSpec(argv, state.program_environment(extra_env))
    repo = state.open_repository(read_only=no_lock)
    progress = Progress()
    with programs_stop_with_us(), out.progress(progress, f"restoring into {argv[0]}"):
        done = restore_command(
            repo,
            snapshot,
            consumer,
            path=path or "",
            selection=snapshot_filter(source, host, tag),
            use_lock=not no_lock,
            progress=progress,
            on_stderr=_stderr_sink(state),
            stdout_to_stderr=state.json,  # with --json, stdout holds only the JSON document
        )
    if state.json:
        out.emit_json(done.to_json())
        return
    out.info(
        f"restored {done.path} ({format_bytes(done.size)}) of snapshot {done.snapshot.short_id} "
        f"into {argv[0]}, which exited 0"
    )


def _stderr_sink(state: CliContext) -> StderrSink | None:
    """The program's messages go on to our standard error as they come (not with --quiet)."""
    if state.quiet:
        return None
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def show(piece: bytes) -> None:
        sys.stderr.write(decoder.decode(piece))
        sys.stderr.flush()

    return show
