"""Back up files and directories, a configured source (--source), or standard input (--stdin).

A path that does not exist or cannot be read is an error (exit 16, no snapshot); so is an
empty standard input, unless --allow-empty."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Exit, Option
from lifeboat.app.cli.options import WorkersOpt

if TYPE_CHECKING:
    from lifeboat.operations.backup import BackupRequest


def command(
    ctx: Context,
    paths: Annotated[list[str] | None, Argument(help="Files and directories to back up.")] = None,
    source: Annotated[
        str | None,
        Option("--source", "-s", metavar="SOURCE", help="A configured source, or a label for these paths."),
    ] = None,
    tag: Annotated[list[str] | None, Option("--tag", metavar="TAG", help="Tag the snapshot (repeatable).")] = None,
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
    host: Annotated[str | None, Option("--host", metavar="HOST", help="Record this host name.")] = None,
    parent: Annotated[str | None, Option("--parent", metavar="SNAPSHOT", help="Compare against this snapshot.")] = None,
    lock_wait: Annotated[
        str | None, Option("--lock-wait", metavar="DURATION", help="Wait this long for a lock (e.g. 5m).")
    ] = None,
    workers: WorkersOpt = None,
) -> None:
    from lifeboat.app.cli.render import backup_summary
    from lifeboat.core.progress import Progress
    from lifeboat.errors import ExitCode, PartialBackup, UsageError
    from lifeboat.operations.backup import backup_files, backup_stream, check_paths, default_workers

    state: CliContext = ctx.obj
    out = state.output
    tags = tuple(tag or ())
    if not stdin and not paths and _is_command_source(state, source):
        from lifeboat.app.cli.command_cmd import back_up

        back_up(
            state,
            argv=(),
            name=None,
            source=source,
            tags=tags,
            allow_empty=allow_empty,
            host=host,
            lock_wait=lock_wait,
            workers=workers,
        )
        return
    if allow_empty and not stdin:
        raise UsageError("--allow-empty goes with --stdin", hint="'lifeboat backup command' takes it too")
    if stdin:
        if paths:
            raise UsageError("--stdin takes no paths")
        if not stdin_name or "/" in stdin_name or stdin_name in (".", ".."):
            raise UsageError(f"--stdin-name {stdin_name!r} is not a file name", hint="give a plain name like dump.sql")
        repo = state.open_repository()
        progress = Progress()
        with out.progress(progress, "backing up stdin"):
            result = backup_stream(
                repo,
                sys.stdin.buffer,
                name=stdin_name,
                source=source or "",
                tags=tags,
                hostname=host,
                lock_wait=state.lock_wait(lock_wait),
                progress=progress,
                workers=workers,
                allow_empty=allow_empty,
            )
    else:
        request = _request(state, paths or [], source, tags, exclude or [], include or [], one_file_system)
        wait = state.lock_wait(lock_wait)  # usage errors first
        check_paths(request)  # a missing path fails before the repository is opened
        repo = state.open_repository()
        request = replace(
            request,
            hostname=host or request.hostname,
            parent=parent,
            lock_wait=wait,
            estimate_total=out.shows_progress,
            workers=workers or default_workers(),
        )
        progress = Progress()
        with out.progress(progress, "backing up"):
            result = backup_files(repo, request, progress=progress, notify=out.notice)
    if state.json:
        out.emit_json(result.to_json())
    else:
        for line in backup_summary(result.snapshot.summary, result.snapshot):
            out.line(line)
    if result.partial:
        out.error(
            PartialBackup(
                f"snapshot {result.snapshot.short_id} is partial: {result.archive.errors} entries could not be read"
            )
        )
        raise Exit(int(ExitCode.PARTIAL))


def _is_command_source(state: CliContext, source: str | None) -> bool:
    config = state.config()
    configured = config.sources.get(source) if config is not None and source else None
    return configured is not None and configured.type == "command"


def _request(
    state: CliContext,
    paths: list[str],
    source: str | None,
    tags: tuple[str, ...],
    exclude: list[str],
    include: list[str],
    one_file_system: bool,
) -> BackupRequest:
    from lifeboat.app.cli.options import PATTERN_HINT
    from lifeboat.core.patterns import PathFilter
    from lifeboat.errors import UsageError

    try:
        PathFilter.build(include, exclude)
    except ValueError as exc:
        raise UsageError(str(exc), hint=PATTERN_HINT) from None
    if any(not path for path in paths):
        raise UsageError("an empty path was given", hint="name the files and directories to back up ('.' is here)")
    config = state.config()
    configured = config.sources.get(source) if config is not None and source else None
    if configured is not None and configured.type != "files":
        raise UsageError(
            f"source {source!r} is a {configured.type} source",
            hint=f"run 'lifeboat backup {configured.type} --source {source}'",
        )
    if configured is not None and configured.type == "files":
        if paths:
            raise UsageError(f"source {source!r} is configured; do not also give paths")
        if configured.repository and not state.repo:
            state.repo = configured.repository
        from lifeboat.operations.backup import BackupRequest

        return BackupRequest(
            paths=tuple(configured.paths),
            source=source or "",
            tags=tuple(configured.tags) + tags,
            includes=tuple(configured.include) + tuple(include),
            excludes=tuple(configured.exclude) + tuple(exclude),
            one_file_system=configured.one_file_system or one_file_system,
        )
    if not paths:
        hint = "give paths to back up, or --source NAME of a configured source"
        raise UsageError("nothing to back up", hint=hint)
    from lifeboat.operations.backup import BackupRequest

    return BackupRequest(
        paths=tuple(paths),
        source=source or "",
        tags=tags,
        includes=tuple(include),
        excludes=tuple(exclude),
        one_file_system=one_file_system,
    )
