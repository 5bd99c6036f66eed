"""Re-arranging snapshot trees of a PostgreSQL backup while it is being written.

The file archiver mirrors absolute paths (``/var/lib/postgresql/15/main/...``). A
PostgreSQL snapshot instead holds ``data/`` (the data directory, plus the
``backup_label`` and ``tablespace_map`` that ``pg_backup_stop`` returned) and
``tablespaces/<oid>/``. :class:`RecordingSaver` remembers every tree the archiver saves,
so the parts can be picked out and re-assembled before the session commits;
:class:`SyntheticParent` shows the previous snapshot to the archiver in the absolute
layout it expects, so unchanged files are recognised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Protocol

import blake3

from lifeboat.core.ids import BlobType
from lifeboat.core.protocols import BlobLoader, BlobSaver, ParentTrees
from lifeboat.core.tree import Node, NodeType, ParentEntry, Tree

DATA = "data"
TABLESPACES = "tablespaces"


class RecordingSaver:
    """A :class:`BlobSaver` that also keeps every tree saved through it."""

    def __init__(self, inner: BlobSaver) -> None:
        self._inner = inner
        self.trees: dict[bytes, Tree] = {}
        self._lock = threading.Lock()

    def blob_id(self, data: bytes | memoryview) -> bytes:
        return self._inner.blob_id(data)

    def save_blob(self, blob_type: BlobType, data: bytes | memoryview, blob_id: bytes | None = None) -> bool:
        return self._inner.save_blob(blob_type, data, blob_id)

    def submit_blob(self, blob_type: BlobType, data: bytes) -> Future[bytes]:
        return self._inner.submit_blob(blob_type, data)

    def has_blob(self, blob_id: bytes) -> bool:
        return self._inner.has_blob(blob_id)

    def has_blobs(self, blob_ids: Sequence[bytes]) -> bool:
        return self._inner.has_blobs(blob_ids)

    def save_tree(self, tree: Tree) -> bytes:
        tree_id = self._inner.save_tree(tree)
        with self._lock:
            self.trees[tree_id] = tree
        return tree_id

    def node_at(self, root: bytes, parts: Sequence[str]) -> Node | None:
        """The node at ``parts`` below the recorded tree ``root``."""
        current = root
        node: Node | None = None
        for i, part in enumerate(parts):
            tree = self.trees.get(current)
            if tree is None:
                return None
            node = tree.get(part)
            if node is None:
                return None
            if i < len(parts) - 1:
                if node.subtree is None:
                    return None
                current = node.subtree
        return node


def split(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.split("/") if p)


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


def with_entries(saver: RecordingSaver, directory: Node, extra: Sequence[Node], name: str) -> Node:
    """``directory`` renamed to ``name``, with ``extra`` entries added (replacing same names)."""
    assert directory.subtree is not None
    base = saver.trees.get(directory.subtree)
    if base is None:
        raise ValueError("the directory's tree was not recorded")
    names = {n.name for n in extra}
    nodes = tuple(n for n in base.nodes if n.name not in names) + tuple(extra)
    return replace(directory, name=name, subtree=saver.save_tree(Tree(nodes)))


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


class ParentLoader(BlobLoader, ParentTrees, Protocol):
    """What :class:`SyntheticParent` reads real trees from (the repository)."""


class SyntheticParent:
    """A :class:`BlobLoader` and :class:`ParentTrees` that adds in-memory trees to a real
    repository's (for the archiver's parent)."""

    def __init__(self, loader: ParentLoader, trees: Mapping[bytes, Tree]) -> None:
        self._loader = loader
        self._trees = dict(trees)

    def load_blob(self, blob_id: bytes, blob_type: BlobType = BlobType.DATA) -> bytes:
        return self._loader.load_blob(blob_id, blob_type)

    def load_blobs(self, blob_ids: Sequence[bytes]) -> Iterator[bytes]:
        return self._loader.load_blobs(blob_ids)

    def raw_lengths(self, blob_ids: Sequence[bytes]) -> list[int]:
        return self._loader.raw_lengths(blob_ids)

    def load_tree(self, tree_id: bytes) -> Tree:
        found = self._trees.get(tree_id)
        return found if found is not None else self._loader.load_tree(tree_id)

    def parent_entries(self, tree_id: bytes) -> Mapping[str, ParentEntry]:
        found = self._trees.get(tree_id)
        if found is None:
            return self._loader.parent_entries(tree_id)
        return {node.name: ParentEntry.of(node) for node in found.nodes}


def absolute_parent(previous: Mapping[str, Node]) -> tuple[bytes, dict[bytes, Tree]]:
    """Trees that place each previous node (absolute path → node) at its path, and the root id.

    The ids are synthetic (never stored); only :class:`SyntheticParent` knows them.
    """
    children: dict[tuple[str, ...], dict[str, Node]] = {}
    for path, node in previous.items():
        parts = split(path)
        if not parts:
            continue
        children.setdefault(parts[:-1], {})[parts[-1]] = replace(node, name=parts[-1])
        for depth in range(len(parts) - 1):
            children.setdefault(parts[:depth], {})
    trees: dict[bytes, Tree] = {}

    def build(prefix: tuple[str, ...]) -> bytes:
        nodes = dict(children.get(prefix, {}))
        for sub in [p for p in children if len(p) == len(prefix) + 1 and p[: len(prefix)] == prefix]:
            if sub[-1] not in nodes:
                nodes[sub[-1]] = Node(name=sub[-1], type=NodeType.DIR, subtree=build(sub))
        tree_id = blake3.blake3(b"lifeboat-synthetic-tree\0" + "/".join(prefix).encode()).digest()
        trees[tree_id] = Tree(tuple(nodes.values()))
        return tree_id

    return build(()), trees
