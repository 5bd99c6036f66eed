"""Looking into snapshots: list their entries and compare two of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lifeboat.core.patterns import split_path
from lifeboat.core.tree import Node, NodeType
from lifeboat.core.treewalk import check_expansion, find, tree_shapes, walk
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
    if recursive:
        check_expansion(repo, repo.load_tree(start), f"/{prefix}" if prefix else "the snapshot's tree")
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


@dataclass(frozen=True)
class _Compare:
    """Two trees still to compare, at ``path``."""

    old: bytes | None
    new: bytes | None
    path: str


@dataclass(frozen=True)
class _Whole:
    """An entry added or removed with everything below it, still to report."""

    node: Node
    path: str
    kind: str


def diff_trees(repo: Repository, old: bytes | None, new: bytes | None, prefix: str = "") -> Iterator[Change]:
    """Changes from tree ``old`` to tree ``new``, by path; identical subtrees are skipped unread.

    Iterative: a stack of what is still to compare or report, so any depth compares. Trees
    beyond the expansion bound are refused first (both are read whole for that).
    """
    shapes = tree_shapes(repo)
    for tree_id, which in ((old, "the first snapshot's tree"), (new, "the second snapshot's tree")):
        if tree_id is not None:
            check_expansion(repo, repo.load_tree(tree_id), which, shapes=shapes)
    todo: list[Change | _Compare | _Whole] = [_Compare(old, new, prefix)]
    while todo:
        item = todo.pop()
        if isinstance(item, Change):
            yield item
            continue
        if isinstance(item, _Whole):
            yield from _all(repo, item.node, item.path, item.kind)
            continue
        if item.old == item.new:
            continue
        old_nodes = {n.name: n for n in repo.load_tree(item.old).nodes} if item.old else {}
        new_nodes = {n.name: n for n in repo.load_tree(item.new).nodes} if item.new else {}
        found: list[Change | _Compare | _Whole] = []
        for name in sorted(old_nodes.keys() | new_nodes.keys()):
            path = f"{item.path}/{name}"
            before, after = old_nodes.get(name), new_nodes.get(name)
            if before is not None and after is not None and before.type is after.type:
                if after.type is NodeType.DIR:
                    if _metadata(before) != _metadata(after):
                        found.append(Change("metadata", path + "/", "dir"))
                    found.append(_Compare(before.subtree, after.subtree, path))
                elif _content(before) != _content(after):
                    found.append(Change("modified", path, after.type.value))
                elif _metadata(before) != _metadata(after):
                    found.append(Change("metadata", path, after.type.value))
                continue
            if before is not None:
                found.append(_Whole(before, path, "removed"))
            if after is not None:
                found.append(_Whole(after, path, "added"))
        todo.extend(reversed(found))  # popped in name order, each subtree before the next name


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
