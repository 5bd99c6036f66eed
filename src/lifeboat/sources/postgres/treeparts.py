"""The snapshot tree of a PostgreSQL base backup.

The snapshot holds ``data/`` (the data directory, plus the ``backup_label`` and
``tablespace_map`` that ``pg_backup_stop`` returned) and ``tablespaces/<oid>/`` (each
tablespace's directory), wherever they are on disk. :func:`places` tells the file archiver
to store them so; the stream method builds the same shape from pg_basebackup's tar.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from lifeboat.core.ids import BlobType
from lifeboat.core.protocols import BlobSaver
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.sources.files.archiver import TreePlace
from lifeboat.sources.files.metadata import OwnerNames

DATA = "data"
TABLESPACES = "tablespaces"


def split(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.split("/") if p)


def places(
    data_dir: str, tablespaces: Sequence[tuple[int, str]], late_entries: Callable[[Node], Sequence[Node]]
) -> tuple[tuple[TreePlace, ...], dict[tuple[str, ...], Node]]:
    """Where the archiver stores a local backup: the data directory (given ``late_entries``)
    as ``data``, each tablespace (oid, location) as ``tablespaces/<oid>``, and the made
    ``tablespaces`` directory (even without any), owned like the data directory."""
    found = (
        TreePlace(data_dir, (DATA,), late_entries=late_entries),
        *(TreePlace(location, (TABLESPACES, str(oid))) for oid, location in tablespaces),
    )
    st = os.stat(data_dir)
    owners = OwnerNames()
    now = time.time_ns()
    made = Node(
        name=TABLESPACES,
        type=NodeType.DIR,
        mode=0o700,
        uid=st.st_uid,
        gid=st.st_gid,
        user=owners.user(st.st_uid),
        group=owners.group(st.st_gid),
        mtime_ns=now,
        atime_ns=now,
        ctime_ns=now,
    )
    return found, {(TABLESPACES,): made}


def small_file(saver: BlobSaver, name: str, data: bytes, like: Node, mode: int = 0o600) -> Node:
    """A file node holding ``data`` (one blob), owned like ``like``."""
    content: tuple[bytes, ...] = ()
    if data:
        blob_id = saver.blob_id(data)
        saver.save_blob(BlobType.DATA, data, blob_id)
        content = (blob_id,)
    now = time.time_ns()
    return Node(
        name=name,
        type=NodeType.FILE,
        mode=mode,
        uid=like.uid,
        gid=like.gid,
        user=like.user,
        group=like.group,
        mtime_ns=now,
        atime_ns=now,
        ctime_ns=now,
        size=len(data),
        content=content,
    )


def directory_node(saver: BlobSaver, name: str, children: Sequence[Node], like: Node) -> Node:
    now = time.time_ns()
    return Node(
        name=name,
        type=NodeType.DIR,
        mode=0o700,
        uid=like.uid,
        gid=like.gid,
        user=like.user,
        group=like.group,
        mtime_ns=now,
        atime_ns=now,
        ctime_ns=now,
        subtree=saver.save_tree(Tree(tuple(children))),
    )
