"""Looking into snapshots: list their entries and compare two of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lifeboat.core.patterns import split_path
from lifeboat.core.tree import Node, NodeType
from lifeboat.core.treewalk import find, walk
from lifeboat.errors import ObjectNotFound
from lifeboat.repository.repo import Repository


def list_entries(
    repo: Repository, tree_id: bytes, path: str = "", *, recursive: bool = True
) -> Iterator[tuple[str, Node]]:
    """``(path, node)`` below ``path`` in a snapshot's tree (``/``-rooted paths)."""
    start = tree_id
    prefix = "/".join(split_path(path))
    if prefix:
        node = find(repo, tree_id, prefix)
        if node is None:
            raise ObjectNotFound(f"no path /{prefix} in the snapshot")
        if node.type is not NodeType.DIR or node.subtree is None:
            yield "/" + prefix, node
            return
        start = node.subtree
    for rel, node in walk(repo, start, prefix, descend=(lambda _p, _n: recursive)):
        yield "/" + rel, node


@dataclass(frozen=True)
class Change:
    kind: str  # added | removed | modified | metadata
    path: str
    node_type: str

    def to_json(self) -> dict[str, str]:
        return {"change": self.kind, "path": self.path, "type": self.node_type}


_SYMBOLS = {"added": "+", "removed": "-", "modified": "M", "metadata": "U"}


def change_symbol(kind: str) -> str:
    return _SYMBOLS[kind]


def diff_trees(repo: Repository, old: bytes | None, new: bytes | None, prefix: str = "") -> Iterator[Change]:
    """Changes from tree ``old`` to tree ``new``; identical subtrees are skipped unread."""
    if old == new:
        return
    old_nodes = {n.name: n for n in repo.load_tree(old).nodes} if old else {}
    new_nodes = {n.name: n for n in repo.load_tree(new).nodes} if new else {}
    for name in sorted(old_nodes.keys() | new_nodes.keys()):
        path = f"{prefix}/{name}"
        before, after = old_nodes.get(name), new_nodes.get(name)
        if before is not None and after is not None and before.type is after.type:
            if after.type is NodeType.DIR:
                if _metadata(before) != _metadata(after):
                    yield Change("metadata", path + "/", "dir")
                yield from diff_trees(repo, before.subtree, after.subtree, path)
            elif _content(before) != _content(after):
                yield Change("modified", path, after.type.value)
            elif _metadata(before) != _metadata(after):
                yield Change("metadata", path, after.type.value)
            continue
        if before is not None:
            yield from _all(repo, before, path, "removed")
        if after is not None:
            yield from _all(repo, after, path, "added")


def _all(repo: Repository, node: Node, path: str, kind: str) -> Iterator[Change]:
    suffix = "/" if node.type is NodeType.DIR else ""
    yield Change(kind, path + suffix, node.type.value)
    if node.type is NodeType.DIR and node.subtree is not None:
        for rel, child in walk(repo, node.subtree, path):
            yield Change(kind, rel + ("/" if child.type is NodeType.DIR else ""), child.type.value)


def _content(node: Node) -> object:
    return (node.content, node.target, node.size)


def _metadata(node: Node) -> object:
    return (node.mode, node.uid, node.gid, node.mtime_ns)
