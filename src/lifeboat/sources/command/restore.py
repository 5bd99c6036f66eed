"""Restoring into a consumer: stream a stored file, verified blob by blob, into its input."""

from __future__ import annotations

from collections.abc import Callable

from lifeboat.core.progress import Progress
from lifeboat.core.protocols import BlobLoader
from lifeboat.core.tree import Node
from lifeboat.errors import IntegrityError
from lifeboat.sources.command.spec import ProgramSpec
from lifeboat.sources.tools.program import Consumer, ProgramExit, StderrSink


def consume(
    loader: BlobLoader,
    node: Node,
    consumer: ProgramSpec,
    *,
    progress: Progress,
    on_stderr: StderrSink | None = None,
    stdout_to_stderr: bool = False,
    cancel: Callable[[], None] | None = None,
) -> ProgramExit:
    """Write the content of the file ``node`` into ``consumer``; raises unless it all went in
    and the consumer exited 0.

    A failure to read or verify the data stops the consumer before its input ends, so it
    never takes a cut stream for a whole one.
    """
    with Consumer(consumer.argv, env=consumer.env, on_stderr=on_stderr, stdout_to_stderr=stdout_to_stderr) as running:
        for data in loader.load_blobs(node.content):
            if cancel is not None:
                cancel()  # a safe point: between two blobs (the consumer is stopped, never fed a cut stream)
            running.write(data)
            progress.bytes_read(len(data))
        if running.written != node.size:
            raise IntegrityError(
                f"{node.name}: its stored content has {running.written} bytes, its entry says {node.size}"
            )
        ended = running.finish()
    progress.file_done()
    return ended
