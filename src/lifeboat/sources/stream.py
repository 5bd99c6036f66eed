"""One byte stream stored as a snapshot's single file (``backup --stdin``, ``backup command``).

The stream is cut into content-defined chunks as it arrives, so memory stays bounded
whatever its length and nothing is copied to disk; the file's node is built only once the
stream has ended.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import BinaryIO

from lifeboat.core.chunking import Chunker
from lifeboat.core.ids import BlobType
from lifeboat.core.progress import Progress
from lifeboat.core.protocols import BlobSaver
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.errors import UsageError


@dataclass(frozen=True)
class StoredStream:
    """The blobs of a stream, in order, and its length."""

    content: tuple[bytes, ...]
    size: int


def check_stream_name(name: str) -> None:
    """A stream is stored under a plain file name."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise UsageError(f"invalid stream name {name!r}: use a plain file name")


def store_stream(saver: BlobSaver, chunker: Chunker, stream: BinaryIO, progress: Progress) -> StoredStream:
    """Chunk and store ``stream`` until it ends."""
    content: list[bytes] = []
    size = 0
    for view in chunker.chunks(stream):
        data = bytes(view)
        blob_id = saver.blob_id(data)
        saver.save_blob(BlobType.DATA, data, blob_id)
        content.append(blob_id)
        size += len(data)
        progress.bytes_read(len(data))
    return StoredStream(tuple(content), size)


def stream_tree(saver: BlobSaver, name: str, stored: StoredStream) -> bytes:
    """Store the root tree holding the stream as the file ``name``; returns its id."""
    now_ns = time.time_ns()
    node = Node(
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
    return saver.save_tree(Tree((node,)))
