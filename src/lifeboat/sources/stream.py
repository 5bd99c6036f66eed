"""One byte stream stored as a snapshot's single file (``backup --stdin``, ``backup command``),
and the loop that stores any stream's chunks.

The stream is cut into content-defined chunks as it arrives, so memory stays bounded
whatever its length and nothing is copied to disk; the file's node is built only once the
stream has ended.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from lifeboat.core.chunking import Chunker
from lifeboat.core.ids import BlobType
from lifeboat.core.progress import Progress
from lifeboat.core.protocols import BlobSaver
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.errors import SourceError, UsageError, option
from lifeboat.sources.base import BackupContext, Produced, SourceKind


@dataclass(frozen=True)
class StoredStream:
    """The blobs of a stream, in order, and its length."""

    content: tuple[bytes, ...]
    size: int


def check_stream_name(name: str) -> None:
    """A stream is stored under a plain file name."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise UsageError(f"invalid stream name {name!r}: use a plain file name")


def store_stream(
    saver: BlobSaver,
    chunker: Chunker,
    stream: BinaryIO,
    progress: Progress,
    *,
    cancel: Callable[[], None] | None = None,
) -> StoredStream:
    """Chunk (content-defined) and store ``stream`` until it ends."""
    return store_chunks(saver, chunker.chunks(stream), progress, cancel=cancel)


def store_chunks(
    saver: BlobSaver,
    pieces: Iterable[bytes | memoryview],
    progress: Progress,
    *,
    cancel: Callable[[], None] | None = None,
    on_chunk: Callable[[bytes], None] | None = None,
) -> StoredStream:
    """Store each piece of a stream as a data blob, in order: the one loop every stream
    source shares (standard input, a producer's output, pg_basebackup's tar members).

    ``cancel`` is called before each piece (a safe point); ``on_chunk`` sees each piece stored.
    """
    content: list[bytes] = []
    size = 0
    for view in pieces:
        if cancel is not None:
            cancel()
        data = bytes(view)
        blob_id = saver.blob_id(data)
        saver.save_blob(BlobType.DATA, data, blob_id)
        content.append(blob_id)
        size += len(data)
        progress.bytes_read(len(data))
        if on_chunk is not None:
            on_chunk(data)
    return StoredStream(tuple(content), size)


def stream_node(name: str, stored: StoredStream) -> Node:
    """The file ``name`` holding a stored stream: private (0600, a dump may hold secrets),
    owned by this process, timed now."""
    now_ns = time.time_ns()
    return Node(
        name=name,
        type=NodeType.FILE,
        mode=0o600,
        uid=os.getuid(),
        gid=os.getgid(),
        mtime_ns=now_ns,
        atime_ns=now_ns,
        ctime_ns=now_ns,
        size=stored.size,
        content=stored.content,
    )


def directory_node(name: str, subtree: bytes) -> Node:
    """A private directory ``name`` whose entries are the stored tree ``subtree``."""
    now_ns = time.time_ns()
    return Node(
        name=name,
        type=NodeType.DIR,
        mode=0o700,
        uid=os.getuid(),
        gid=os.getgid(),
        mtime_ns=now_ns,
        atime_ns=now_ns,
        ctime_ns=now_ns,
        subtree=subtree,
    )


def stream_tree(saver: BlobSaver, name: str, stored: StoredStream) -> bytes:
    """Store the root tree holding the stream as the file ``name``; returns its id."""
    node = stream_node(name, stored)
    return saver.save_tree(Tree((node,)))


@dataclass(frozen=True)
class StreamRequest:
    """Store ``stream`` (standard input) as the file ``name``."""

    stream: BinaryIO
    name: str
    source: str = ""  # default: stdin:NAME
    kind: str = "stdin"
    allow_empty: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class StreamSource(SourceKind):
    """A byte stream handed in by the front end (``backup --stdin``): not a configured kind,
    but backed up and saved like one."""

    name = "stdin"
    config_model = ""
    snapshot_kinds = ("stdin",)

    def label(self, request: StreamRequest) -> str:
        return "backing up stdin"

    def check(self, request: StreamRequest) -> None:
        check_stream_name(request.name)

    def backup(self, ctx: BackupContext, request: StreamRequest) -> Produced:
        """Store the stream; an empty one is usually a producer that failed: SourceError unless allowed."""
        from lifeboat.sources.files.archiver import ArchiveResult

        stored = store_stream(ctx.saver, ctx.chunker, request.stream, ctx.events.progress, cancel=ctx.events.check)
        if stored.size == 0 and not request.allow_empty:
            raise SourceError(
                "standard input was empty (0 bytes)",
                hint="no snapshot was saved; the program piped in probably failed — "
                f"'lifeboat backup command' checks it; set {option('allow_empty')} if empty is right",
            )
        tree = stream_tree(ctx.saver, request.name, stored)
        ctx.events.progress.file_done()
        return Produced(
            tree=tree,
            source=request.source or f"stdin:{request.name}",
            kind=request.kind,
            paths=(request.name,),
            archive=ArchiveResult(tree=tree, files_new=1, bytes_total=stored.size),
            extra=dict(request.extra),
        )
