"""Handing a stored archive to pg_restore: streamed into its standard input (a custom-format
archive, restored by one process), or written to a temporary place first — a parallel
restore needs a seekable file, and a directory-format archive (a backup with ``jobs``) is a
directory. The temporary copy is as large as the archive and is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping

from lifeboat.core.events import Events
from lifeboat.core.protocols import BlobLoader
from lifeboat.core.tree import Node, NodeType
from lifeboat.errors import IntegrityError
from lifeboat.sources.tools.program import Consumer


def run_on_archive(
    loader: BlobLoader,
    events: Events,
    node: Node,
    argv_for: Callable[[str | None], list[str]],
    env: Mapping[str, str],
    *,
    seekable: bool = False,
    temp_dir: str | None = None,
    to_stdout: bool = False,
    show_output: bool = True,
    may_stop_early: bool = True,
) -> None:
    """Run ``argv_for(path)`` on the archive ``node``: ``path`` None means the archive comes
    on standard input. Raises unless the program exited 0 having taken every byte (read back
    and verified) — or, ``may_stop_early``, all it wanted: pg_restore of one table or of the
    schema alone stops reading once it has what it needs."""
    sink = events.program_output if show_output else None
    if node.type is NodeType.FILE and not seekable:
        _stream(
            loader, events, node, argv_for(None), env, sink=sink, to_stdout=to_stdout, may_stop_early=may_stop_early
        )
        return
    directory = tempfile.mkdtemp(prefix="lifeboat-pg-restore-", dir=temp_dir)
    try:
        path = materialize(loader, node, directory, events.check)
        with Consumer(argv_for(path), env=env, on_stderr=sink, stdout_to_stderr=not to_stdout) as running:
            running.finish()
        events.progress.file_done()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _stream(
    loader: BlobLoader,
    events: Events,
    node: Node,
    argv: list[str],
    env: Mapping[str, str],
    *,
    sink: Callable[[bytes], None] | None,
    to_stdout: bool,
    may_stop_early: bool,
) -> None:
    with Consumer(
        argv, env=env, on_stderr=sink, stdout_to_stderr=not to_stdout, may_stop_early=may_stop_early
    ) as running:
        for data in loader.load_blobs(node.content):
            events.check()  # a safe point: between two blobs (the program is stopped, never fed a cut stream)
            running.write(data)
            events.progress.bytes_read(len(data))
            if running.stopped_early:
                break
        if not running.stopped_early and running.written != node.size:
            raise IntegrityError(
                f"{node.name}: its stored content has {running.written} bytes, its entry says {node.size}"
            )
        running.finish()
    events.progress.file_done()


def materialize(loader: BlobLoader, node: Node, directory: str, cancel: Callable[[], None]) -> str:
    """Write the archive ``node`` (a file, or a directory of files) below ``directory``; its path."""
    if node.type is NodeType.FILE:
        path = os.path.join(directory, "archive.dump")
        _write(loader, node, path, cancel)
        return path
    if node.type is not NodeType.DIR or node.subtree is None:
        raise IntegrityError(f"{node.name}: neither an archive file nor an archive directory")
    path = os.path.join(directory, "archive")
    os.mkdir(path, 0o700)
    for member in loader.load_tree(node.subtree).nodes:
        if member.type is not NodeType.FILE:
            raise IntegrityError(f"{node.name}/{member.name}: an archive directory holds only files")
        _write(loader, member, os.path.join(path, member.name), cancel)
    return path


def _write(loader: BlobLoader, node: Node, path: str, cancel: Callable[[], None]) -> None:
    written = 0
    with open(path, "xb") as out:
        os.fchmod(out.fileno(), 0o600)
        for data in loader.load_blobs(node.content):
            cancel()
            out.write(data)
            written += len(data)
    if written != node.size:
        raise IntegrityError(f"{node.name}: its stored content has {written} bytes, its entry says {node.size}")
