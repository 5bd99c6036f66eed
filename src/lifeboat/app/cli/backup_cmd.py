"""Back up files and directories, any configured source (--source NAME), or standard input (--stdin).

A path that does not exist or cannot be read is an error (exit 16, no snapshot); so is an
empty standard input, unless --allow-empty. A configured source of any kind (files,
postgres, pg_dump, mariadb, redis, sqlite, ldap, config, command) is backed up by --source
NAME alone."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Exit, Option
from lifeboat.app.cli.options import LockWaitOpt, RecordHostOpt, SnapshotTagOpt, WorkersOpt

if TYPE_CHECKING:
    from lifeboat.operations.snapshots import SourceBackup
    from lifeboat.sources.base import BackupOptions


def command(
    ctx: Context,
    paths: Annotated[list[str] | None, Argument(help="Files and directories to back up.")] = None,
    source: Annotated[
        str | None,
        Option("--source", "-s", metavar="SOURCE", help="A configured source (any kind), or a label for these paths."),
    ] = None,
    tag: SnapshotTagOpt = None,
    exclude: Annotated[
        list[str] | None, Option("--exclude", "-e", metavar="PATTERN", help="Exclude pattern (repeatable).")
    ] = None,
    include: Annotated[
        list[str] | None, Option("--include", "-i", metavar="PATTERN", help="Only take matches (repeatable).")
    ] = None,
    one_file_system: Annotated[
        bool, Option("--one-file-system", "-x", help="Do not cross file-system boundaries.")
    ] = False,
    stdin: Annotated[bool, Option("--stdin", help="Back up standard input as one file.")] = False,
    stdin_name: Annotated[str, Option("--stdin-name", metavar="NAME", help="File name for --stdin.")] = "stdin",
    allow_empty: Annotated[
        bool, Option("--allow-empty", help="With --stdin or a command source: save even an empty stream.")
    ] = False,
    host: RecordHostOpt = None,
    parent: Annotated[str | None, Option("--parent", metavar="SNAPSHOT", help="Compare against this snapshot.")] = None,
    lock_wait: LockWaitOpt = None,
    workers: WorkersOpt = None,
) -> None:
    from lifeboat.config.resolve import configured_source
    from lifeboat.errors import UsageError
    from lifeboat.sources.base import BackupOptions

    state: CliContext = ctx.obj
    tags = tuple(tag or ())
    if stdin:
        if paths:
            raise UsageError("--stdin takes no paths")
        if not stdin_name or "/" in stdin_name or stdin_name in (".", ".."):
            raise UsageError(f"--stdin-name {stdin_name!r} is not a file name", hint="give a plain name like dump.sql")
        _back_up_stdin(state, stdin_name, source, tags, host, allow_empty, lock_wait, workers)
        return
    configured = configured_source(state.config(), source)
    kind = configured.type if configured is not None else "files"
    settings: dict[str, Any] = {}
    if kind == "files":
        if allow_empty:
            raise UsageError("--allow-empty goes with --stdin", hint="'lifeboat backup command' takes it too")
        settings = {
            "paths": tuple(paths or ()),
            "include": tuple(include or ()),
            "exclude": tuple(exclude or ()),
            "one_file_system": one_file_system,
            "parent": parent,
            "count_ahead": state.output.shows_progress,
        }
    else:
        if paths:
            raise UsageError(f"source {source!r} is a {kind} source: it takes no paths")
        if allow_empty:
            settings["allow_empty"] = True
    options = BackupOptions(
        source=source or "",
        tags=tags,
        hostname=host,
        workers=workers,
        settings=settings,
        environment=state.environment(),
    )
    back_up(state, options, lock_wait=lock_wait)


def back_up(state: CliContext, options: BackupOptions, *, kind: str | None = None, lock_wait: str | None) -> None:
    """Back up the configured source ``options.source`` (or the ``kind`` source the options
    give) through its kind, and print the result. Every ``backup`` command ends here."""
    from lifeboat.config.resolve import backup_job, source_repository

    config = state.config()
    if (configured := source_repository(config, options.source)) and not state.repo:
        state.repo = configured
    job = backup_job(config, options, kind=kind)  # usage errors first
    job = replace(job, lock_wait=state.lock_wait(lock_wait))
    job.kind.check(job.request)  # a missing path fails before the repository is opened
    _run(state, job)


def _back_up_stdin(
    state: CliContext,
    name: str,
    source: str | None,
    tags: tuple[str, ...],
    host: str | None,
    allow_empty: bool,
    lock_wait: str | None,
    workers: int | None,
) -> None:
    from lifeboat.core.host import this_host
    from lifeboat.operations.snapshots import SourceBackup, default_workers
    from lifeboat.sources.stream import StreamRequest, StreamSource

    job = SourceBackup(
        StreamSource(),
        StreamRequest(sys.stdin.buffer, name, source=source or "", allow_empty=allow_empty),
        tags=tags,
        hostname=host or this_host(),
        lock_wait=state.lock_wait(lock_wait),
        workers=workers or default_workers(),
        label="backing up stdin",
    )
    _run(state, job)


def _run(state: CliContext, job: SourceBackup) -> None:
    import contextlib

    from lifeboat.app.cli.eventview import viewed
    from lifeboat.app.cli.interrupts import programs_stop_with_us
    from lifeboat.app.cli.render import backup_summary
    from lifeboat.errors import ExitCode
    from lifeboat.operations.snapshots import run_backup

    out = state.output
    repo = state.open_repository()
    stops = programs_stop_with_us() if job.kind.runs_programs else contextlib.nullcontext()
    with stops, viewed(out, style=state.progress_style, signals=state.signals) as (events, view):
        result = run_backup(repo, job, events=events)
    if state.json:
        out.emit_json(view.result)
    else:
        for line in backup_summary(result.snapshot.summary, result.snapshot):
            out.line(line)
        for line in job.kind.describe(result.snapshot):
            out.line(line)
    if result.incomplete is not None:
        out.error(result.incomplete)
        raise Exit(int(ExitCode.PARTIAL))
