"""Walking snapshot trees through a :class:`TreeLoader` (logic only; the loader does I/O),
and the bound on how far a walk may expand trees that share subtrees."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from lifeboat.core.protocols import TreeLoader, TreeSource
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.errors import IntegrityError, StorageError


def walk(
    loader: TreeLoader,
    tree_id: bytes,
    prefix: str = "",
    *,
    descend: Callable[[str, Node], bool] | None = None,
) -> Iterator[tuple[str, Node]]:
    """Yield ``(path, node)`` for every entry below ``tree_id``, depth first, by name.

    Paths are ``/``-joined below the root (``srv/app/file``). ``descend`` may refuse to
    enter a directory. Iterative (a stack of open listings), so any depth walks.
    """
    stack = [(prefix, iter(loader.load_tree(tree_id).nodes))]
    while stack:
        base, nodes = stack[-1]
        node = next(nodes, None)
        if node is None:
            stack.pop()
            continue
        path = f"{base}/{node.name}" if base else node.name
        yield path, node
        if node.type is NodeType.DIR and node.subtree is not None and (descend is None or descend(path, node)):
            stack.append((path, iter(loader.load_tree(node.subtree).nodes)))


def find(loader: TreeLoader, tree_id: bytes, path: str) -> Node | None:
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


# --- the expansion bound ---------------------------------------------------------------------------
# Identical directories deduplicate to one tree, so a snapshot is a DAG of trees and a walk
# visits a shared tree once per path to it. Legitimate sharing is modest; a crafted snapshot
# whose every level points twice at the next makes 2^n paths out of n trees. A walk (restore,
# ls, diff) refuses a tree whose expansion exceeds the bound, and check reports it; the rule
# is normative (docs/format.md §9).


@dataclass(frozen=True)
class ExpansionBound:
    """A walk may visit at most ``max(floor, factor × distinct entries)`` entries."""

    floor: int = 10_000_000
    factor: int = 10_000

    def limit(self, distinct: int) -> int:
        return max(self.floor, self.factor * distinct)


EXPANSION_BOUND = ExpansionBound()
_SATURATED = 1 << 62  # counts stop growing here: enough to compare with any bound


@dataclass(frozen=True)
class TreeSize:
    """How big a walk of a tree is: ``entries`` visited (a shared subtree once per path to it),
    ``distinct`` entries of its distinct trees (each once), and the number of those ``trees``."""

    entries: int
    distinct: int
    trees: int

    def within(self, bound: ExpansionBound = EXPANSION_BOUND) -> bool:
        return self.entries <= bound.limit(self.distinct)

    def describe(self, bound: ExpansionBound = EXPANSION_BOUND) -> str:
        entries = f"more than {_SATURATED:,}" if self.entries >= _SATURATED else f"{self.entries:,}"
        return (
            f"its directories share subtrees so that a walk would visit {entries} entries "
            f"made of {self.distinct:,} distinct ones in {self.trees:,} trees "
            f"(the limit is {bound.limit(self.distinct):,}: max({bound.floor:,}, {bound.factor:,} × distinct))"
        )


PREFETCH_BATCH = 4096  # trees of one level asked for together (ids only: the reader bounds the bytes)


class TreeShapes:
    """The shape of trees (entries, subdirectory trees), loaded once each, and the sizes of walks.

    ``load`` returns a tree, or None for one that cannot be read (it counts as empty: the
    walk reports it where it meets it). Everything is iterative and memoised per tree id,
    so measuring costs one load per distinct tree, whatever the depth or the sharing. Trees
    are loaded a level at a time, and ``prefetch`` (when given) is told each level's trees
    first, so a reader by pack (repository/treespans.py) reads them with a few requests.
    """

    def __init__(
        self, load: Callable[[bytes], Tree | None], *, prefetch: Callable[[Sequence[bytes]], None] | None = None
    ) -> None:
        self._load = load
        self._prefetch = prefetch
        self._shapes: dict[bytes, tuple[int, tuple[bytes, ...]]] = {}
        self._expanded: dict[bytes, int] = {}

    def record(self, tree_id: bytes, tree: Tree) -> None:
        """Remember a tree read elsewhere (check's reachability pass), so it is not read again."""
        self._shapes[tree_id] = _shape(tree)

    def size(self, tree: Tree) -> TreeSize:
        """The size of a walk of ``tree``'s entries (the tree itself given, not its id)."""
        roots = _shape(tree)[1]
        self._load_all(roots)
        entries = min(_SATURATED, len(tree.nodes) + sum(self._expansion(r) for r in roots))
        distinct, trees = self._distinct(roots)
        return TreeSize(entries, len(tree.nodes) + distinct, trees + 1)

    def size_of(self, tree_id: bytes) -> TreeSize:
        self._load_all((tree_id,))
        entries = self._expansion(tree_id)
        distinct, trees = self._distinct((tree_id,))
        return TreeSize(entries, distinct, trees)

    def exceeds(self, tree_id: bytes, bound: ExpansionBound = EXPANSION_BOUND) -> TreeSize | None:
        """The size of ``tree_id`` if it is beyond ``bound`` (distinct entries are counted only
        for a tree larger than the floor: most never are)."""
        self._load_all((tree_id,))
        if self._expansion(tree_id) <= bound.floor:
            return None
        size = self.size_of(tree_id)
        return None if size.within(bound) else size

    def _load_all(self, roots: tuple[bytes, ...]) -> None:
        """Load every tree below ``roots`` not loaded yet, a level at a time."""
        level = [r for r in dict.fromkeys(roots) if r not in self._shapes]
        while level:
            below: dict[bytes, None] = {}
            for start in range(0, len(level), PREFETCH_BATCH):
                batch = level[start : start + PREFETCH_BATCH]
                if self._prefetch is not None:
                    self._prefetch(batch)
                for tree_id in batch:
                    if tree_id in self._shapes:
                        continue
                    tree = self._load(tree_id)
                    shape = _shape(tree) if tree is not None else (0, ())
                    self._shapes[tree_id] = shape
                    below.update((s, None) for s in shape[1] if s not in self._shapes)
            level = [s for s in below if s not in self._shapes]

    def _expansion(self, root: bytes) -> int:
        """Entries a walk of ``root`` visits (post-order over the shapes, memoised)."""
        stack: list[tuple[bytes, bool]] = [(root, False)]
        open_: set[bytes] = set()
        while stack:
            tree_id, ready = stack.pop()
            if tree_id in self._expanded:
                continue
            count, subtrees = self._shapes.get(tree_id, (0, ()))
            if ready:
                open_.discard(tree_id)
                total = count + sum(self._expanded.get(s, 0) for s in subtrees)
                self._expanded[tree_id] = min(_SATURATED, total)
                continue
            if tree_id in open_:  # a tree inside itself: impossible with hashed ids, refused anyway
                raise IntegrityError(f"tree {tree_id.hex()[:8]} contains itself")
            open_.add(tree_id)
            stack.append((tree_id, True))
            stack.extend((s, False) for s in subtrees if s not in self._expanded)
        return self._expanded[root]

    def _distinct(self, roots: tuple[bytes, ...]) -> tuple[int, int]:
        """Entries and number of the distinct trees reachable from ``roots``."""
        seen = set(roots)
        stack = list(seen)
        entries = 0
        while stack:
            count, subtrees = self._shapes.get(stack.pop(), (0, ()))
            entries += count
            for subtree in subtrees:
                if subtree not in seen:
                    seen.add(subtree)
                    stack.append(subtree)
        return entries, len(seen)


def _shape(tree: Tree) -> tuple[int, tuple[bytes, ...]]:
    return len(tree.nodes), tuple(n.subtree for n in tree.nodes if n.type is NodeType.DIR and n.subtree is not None)


def tree_shapes(loader: TreeLoader) -> TreeShapes:
    """Shapes read through ``loader`` (a level at a time, told to it first when it is a
    :class:`TreeSource`); trees that cannot be read count as empty (the walk reports them
    where it meets them)."""
    prefetch = loader.prefetch_trees if isinstance(loader, TreeSource) else None
    return TreeShapes(lambda tree_id: _load_or_none(loader, tree_id), prefetch=prefetch)


def check_expansion(
    loader: TreeLoader,
    tree: Tree,
    what: str,
    *,
    shapes: TreeShapes | None = None,
    bound: ExpansionBound = EXPANSION_BOUND,
) -> None:
    """Refuse (``IntegrityError``) to walk ``tree`` when its walk is beyond ``bound``.

    Pass the same ``shapes`` to check several trees that share subtrees (each is read once).
    """
    size = (shapes or tree_shapes(loader)).size(tree)
    if not size.within(bound):
        raise IntegrityError(
            f"{what}: {size.describe(bound)}; refusing to walk it",
            hint="no file system produces such a tree: the snapshot was crafted or damaged; "
            "'lifeboat check' reports it",
        )


def _load_or_none(loader: TreeLoader, tree_id: bytes) -> Tree | None:
    try:
        return loader.load_tree(tree_id)
    except (IntegrityError, StorageError):
        return None
