"""Walking snapshot trees through a :class:`BlobLoader` (logic only; the loader does I/O)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from lifeboat.core.protocols import BlobLoader
from lifeboat.core.tree import Node, NodeType


def walk(
    loader: BlobLoader,
    tree_id: bytes,
    prefix: str = "",
    *,
    descend: Callable[[str, Node], bool] | None = None,
) -> Iterator[tuple[str, Node]]:
    """Yield ``(path, node)`` for every entry below ``tree_id``, depth first, by name.

    Paths are ``/``-joined below the root (``srv/app/file``). ``descend`` may refuse to
    enter a directory.
    """
    for node in loader.load_tree(tree_id).nodes:
        path = f"{prefix}/{node.name}" if prefix else node.name
        yield path, node
        if node.type is NodeType.DIR and node.subtree is not None and (descend is None or descend(path, node)):
            yield from walk(loader, node.subtree, path, descend=descend)


def find(loader: BlobLoader, tree_id: bytes, path: str) -> Node | None:
    """The node at ``path`` (``/``-separated, relative to the root), or None."""
    parts = [p for p in path.strip("/").split("/") if p]
    current = tree_id
    node: Node | None = None
    for i, part in enumerate(parts):
        node = loader.load_tree(current).get(part)
        if node is None:
            return None
        if i < len(parts) - 1:
            if node.type is not NodeType.DIR or node.subtree is None:
                return None
            current = node.subtree
    return node
