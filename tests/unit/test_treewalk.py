"""Walking trees at any depth, and the bound on how far shared subtrees may expand a walk."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

import pytest

from lifeboat.core.ids import BlobType
from lifeboat.core.trampoline import Nested, run_nested
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.core.treewalk import ExpansionBound, TreeShapes, check_expansion, tree_shapes, walk
from lifeboat.errors import IntegrityError


class Trees:
    """Trees in memory, by id: all a walk reads through its loader."""

    def __init__(self) -> None:
        self.trees: dict[bytes, Tree] = {}
        self.loads = 0

    def add(self, *nodes: Node) -> bytes:
        tree = Tree(tuple(sorted(nodes, key=lambda n: n.name)))
        tree_id = hashlib.blake2b(tree.encode(), digest_size=32).digest()
        self.trees[tree_id] = tree
        return tree_id

    def load_tree(self, tree_id: bytes) -> Tree:
        self.loads += 1
        try:
            return self.trees[tree_id]
        except KeyError:
            raise IntegrityError(f"tree {tree_id.hex()[:8]} is missing") from None

    def load_blob(self, blob_id: bytes, blob_type: BlobType = BlobType.DATA) -> bytes:
        raise NotImplementedError

    def load_blobs(self, blob_ids: Sequence[bytes]) -> Iterator[bytes]:
        raise NotImplementedError

    def raw_lengths(self, blob_ids: Sequence[bytes]) -> list[int]:
        raise NotImplementedError


def directory(name: str, subtree: bytes) -> Node:
    return Node(name, NodeType.DIR, subtree=subtree)


def doubling(trees: Trees, levels: int) -> bytes:
    """Every level holds ``a`` and ``b``, both the level below: 2^levels paths to the file."""
    tree = trees.add(Node("f", NodeType.FILE))
    for _ in range(levels):
        tree = trees.add(directory("a", tree), directory("b", tree))
    return tree


def test_a_walk_of_a_tree_5000_levels_deep_needs_no_recursion() -> None:
    trees = Trees()
    tree = trees.add(Node("f", NodeType.FILE))
    for _ in range(5000):
        tree = trees.add(directory("d", tree), Node("g", NodeType.FILE))
    paths = [path for path, _node in walk(trees, tree)]
    assert len(paths) == 10_001
    assert paths[:3] == ["d", "d/d", "d/d/d"]  # depth first, by name
    assert paths[-2:] == ["d/g", "g"]


def test_nested_generators_run_without_recursion_and_pass_exceptions_up() -> None:
    def count(depth: int) -> Nested[int]:
        if depth == 0:
            return 0
        below = yield count(depth - 1)
        return below + 1

    assert run_nested(count(200_000)) == 200_000

    closed: list[int] = []

    def failing(depth: int) -> Nested[int]:
        try:
            if depth == 0:
                raise ValueError("at the bottom")
            return (yield failing(depth - 1))
        finally:
            closed.append(depth)

    with pytest.raises(ValueError, match="at the bottom"):
        run_nested(failing(5000))
    assert closed == list(range(5001))  # every level's finally ran, deepest first


def test_the_size_of_a_doubling_tree_is_counted_from_its_distinct_trees() -> None:
    trees = Trees()
    root = doubling(trees, 26)
    size = TreeShapes(trees.load_tree).size_of(root)
    assert (size.entries, size.distinct, size.trees) == (3 * 2**26 - 2, 53, 27)
    assert trees.loads == 27  # each distinct tree read once
    assert not size.within()


def test_the_bound_is_the_larger_of_the_floor_and_the_factor_times_the_distinct_entries() -> None:
    trees = Trees()
    shapes = TreeShapes(trees.load_tree)
    bound = ExpansionBound(floor=100, factor=10)
    seven = shapes.size_of(doubling(trees, 5))  # 94 entries from 11 distinct: under the floor
    assert (seven.entries, seven.distinct) == (94, 11)
    assert seven.within(bound)
    six = shapes.size_of(doubling(trees, 6))  # 190 from 13: over the floor and over 10 × 13
    assert (six.entries, six.distinct) == (190, 13) and not six.within(bound)
    assert six.within(ExpansionBound(floor=100, factor=15))  # 15 × 13 = 195
    assert "would visit 190 entries made of 13 distinct ones in 7 trees" in six.describe(bound)
    assert "max(100, 10 × distinct)" in six.describe(bound)


def test_unreadable_trees_count_as_empty_and_a_refusal_is_an_integrity_error() -> None:
    trees = Trees()
    missing = b"\x01" * 32
    root = Tree((directory("a", doubling(trees, 30)), directory("gone", missing)))
    with pytest.raises(IntegrityError, match="refusing to walk it"):
        check_expansion(trees, root, "the tree")
    shapes = tree_shapes(trees)
    size = shapes.size(root)
    assert size.entries == 2 + 3 * 2**30 - 2
    check_expansion(trees, Tree((directory("gone", missing),)), "the tree")  # nothing to expand


class PrefetchingTrees(Trees):
    """Trees that are told, before they are loaded, which ones a walk needs next."""

    def __init__(self) -> None:
        super().__init__()
        self.prefetched: list[list[bytes]] = []

    def prefetch_trees(self, tree_ids: Iterable[bytes]) -> None:
        self.prefetched.append(list(tree_ids))


def test_measuring_a_tree_asks_for_each_level_of_directories_together() -> None:
    trees = PrefetchingTrees()
    leaves = [trees.add(Node(f"f{i}", NodeType.FILE)) for i in range(4)]
    middle = [trees.add(directory("x", leaves[0]), directory("y", leaves[1])), trees.add(directory("z", leaves[2]))]
    root = Tree((directory("m0", middle[0]), directory("m1", middle[1]), directory("again", middle[1])))
    check_expansion(trees, root, "the tree")
    # One hint per level (each distinct tree once), given before any tree of that level is loaded.
    assert trees.prefetched == [middle, leaves[:3]]
    assert trees.loads == 5
