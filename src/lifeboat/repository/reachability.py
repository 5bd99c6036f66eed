"""Which blobs the snapshots use: the mark phase shared by check, prune and stats.

Marks live in a bitmap over the index's dense blob positions (one bit per blob), and
each tree is walked once however many snapshots share it. When something is missing, a
second walk attributes it to *every* snapshot that needs it — a tree shared by several
snapshots is read once, but each of them is named with its own paths (up to
:data:`MISSING_LISTED` per snapshot; the rest are counted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lifeboat.core.ids import BlobType, short
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import NodeType, Tree
from lifeboat.errors import IntegrityError, StorageError
from lifeboat.repository.index import BlobIndex
from lifeboat.repository.repo import Repository


class Bitmap:
    """A fixed-size set of small integers."""

    def __init__(self, size: int) -> None:
        self._bits = bytearray((size + 7) // 8)

    def add(self, i: int) -> bool:
        """Set bit ``i``; True if it was not set before."""
        byte, bit = divmod(i, 8)
        mask = 1 << bit
        if self._bits[byte] & mask:
            return False
        self._bits[byte] |= mask
        return True

    def __contains__(self, i: object) -> bool:
        if not isinstance(i, int):
            return False
        byte, bit = divmod(i, 8)
        return bool(self._bits[byte] & (1 << bit))


@dataclass(frozen=True)
class MissingData:
    """A blob a snapshot needs that is missing, unindexed or unreadable."""

    snapshot: str
    path: str
    blob: bytes
    reason: str
    storage: bool = False  # the storage would not give it (a permission, an I/O error): not damage

    def what(self) -> str:
        """What is missing and where, without naming the snapshot."""
        where = f"/{self.path}" if self.path else "its root tree"
        return f"{where} needs blob {short(self.blob)}, which is {self.reason}"

    def describe(self) -> str:
        return f"snapshot {self.snapshot[:8]}: {self.what()}"


MISSING_LISTED = 1000  # missing blobs listed per snapshot; beyond this they are only counted


@dataclass
class Reachability:
    used: Bitmap
    missing: list[MissingData] = field(default_factory=list)  # every snapshot's, up to MISSING_LISTED each
    unlisted: dict[str, int] = field(default_factory=dict)  # snapshot id -> missing blobs beyond the list
    trees: int = 0
    data_blobs: int = 0


def mark(
    repo: Repository,
    snapshots: Iterable[Snapshot],
    *,
    index: BlobIndex | None = None,
    damaged: Callable[[bytes], bool] = lambda _blob: False,
    unreadable: Callable[[bytes], bool] = lambda _blob: False,
    tolerate_storage_errors: bool = False,
    on_tree: Callable[[bytes, Tree], None] | None = None,
) -> Reachability:
    """Mark every blob reachable from ``snapshots``; report what is missing or damaged.

    ``unreadable`` names blobs the storage would not give (check read their packs and was
    refused). With ``tolerate_storage_errors`` (check), a tree the storage will not give is
    reported like a missing one, marked as a storage fault, and the walk goes on; otherwise
    (prune, stats) the storage error ends the walk. ``on_tree`` sees each distinct tree once,
    as it is read (check measures the walks).
    """
    index = index if index is not None else repo.index()
    index.compact()
    snapshots = list(snapshots)
    result = Reachability(Bitmap(len(index)))
    for snapshot in snapshots:
        stack: list[tuple[str, bytes]] = [("", snapshot.tree)]
        while stack:
            path, tree_id = stack.pop()
            position = index.position(tree_id)
            if position < 0:
                result.missing.append(MissingData(snapshot.id, path, tree_id, "not in the index"))
                continue
            if not result.used.add(position):
                continue  # this tree (and everything below it) is already marked
            result.trees += 1
            try:
                tree = repo.load_tree(tree_id)
            except IntegrityError as exc:
                result.missing.append(MissingData(snapshot.id, path, tree_id, f"unreadable ({exc})"))
                continue
            except StorageError as exc:
                if not tolerate_storage_errors:
                    raise
                reason = f"in a pack the storage would not give ({exc})"
                result.missing.append(MissingData(snapshot.id, path, tree_id, reason, storage=True))
                continue
            if on_tree is not None:
                on_tree(tree_id, tree)
            for node in tree.nodes:
                child = f"{path}/{node.name}" if path else node.name
                if node.type is NodeType.DIR and node.subtree is not None:
                    stack.append((child, node.subtree))
                    continue
                for blob in node.content:
                    pos = index.position(blob)
                    if pos < 0:
                        result.missing.append(MissingData(snapshot.id, child, blob, "not in the index"))
                        continue
                    if damaged(blob):
                        result.missing.append(MissingData(snapshot.id, child, blob, "damaged"))
                    elif unreadable(blob):
                        reason = "in a pack the storage would not give"
                        result.missing.append(MissingData(snapshot.id, child, blob, reason, storage=True))
                    if result.used.add(pos):
                        result.data_blobs += 1
    if result.missing:  # rare: name every snapshot that needs what is missing, not only the first
        below = _missing_below(
            repo, index, _Judge(damaged, unreadable, tolerate_storage_errors), [s.tree for s in snapshots]
        )
        result.missing = []
        for snapshot in snapshots:
            found = below[snapshot.tree]
            result.missing.extend(
                MissingData(snapshot.id, path, blob, reason, storage=storage)
                for path, blob, reason, storage in found.items
            )
            if found.count > len(found.items):
                result.unlisted[snapshot.id] = found.count - len(found.items)
    return result


@dataclass(frozen=True)
class _Below:
    """What is missing below one tree: the first few (path relative to it, blob, reason, whether
    the storage refused it), and how many."""

    items: tuple[tuple[str, bytes, str, bool], ...] = ()
    count: int = 0


@dataclass(frozen=True)
class _Judge:
    """The first walk's rules for the second: what counts as damaged or refused, and whether a
    tree the storage will not give ends the walk."""

    damaged: Callable[[bytes], bool]
    unreadable: Callable[[bytes], bool]
    tolerate_storage_errors: bool

    def reason(self, index: BlobIndex, blob: bytes) -> tuple[str, bool] | None:
        if index.position(blob) < 0:
            return "not in the index", False
        if self.damaged(blob):
            return "damaged", False
        if self.unreadable(blob):
            return "in a pack the storage would not give", True
        return None


_CLEAN = _Below()


def _missing_below(repo: Repository, index: BlobIndex, judge: _Judge, roots: list[bytes]) -> dict[bytes, _Below]:
    """For each tree reachable from ``roots``, what is missing below it; each tree read once,
    iteratively (post-order), so depth and sharing cost nothing but the count."""
    memo: dict[bytes, _Below] = {}
    open_trees: dict[bytes, Tree] = {}  # read, children not all done yet
    for root in roots:
        stack: list[bytes] = [root]
        while stack:
            tree_id = stack[-1]
            if tree_id in memo:
                stack.pop()
                continue
            tree = open_trees.get(tree_id)
            if tree is None:
                if index.position(tree_id) < 0:
                    memo[tree_id] = _Below((("", tree_id, "not in the index", False),), 1)
                    continue
                try:
                    tree = open_trees[tree_id] = repo.load_tree(tree_id)
                except IntegrityError as exc:
                    memo[tree_id] = _Below((("", tree_id, f"unreadable ({exc})", False),), 1)
                    continue
                except StorageError as exc:
                    if not judge.tolerate_storage_errors:
                        raise
                    memo[tree_id] = _Below((("", tree_id, f"in a pack the storage would not give ({exc})", True),), 1)
                    continue
                children = [n.subtree for n in tree.nodes if n.type is NodeType.DIR and n.subtree is not None]
                pending = [c for c in children if c not in memo and c not in open_trees]
                if pending:
                    stack.extend(pending)
                    continue
            del open_trees[tree_id]
            stack.pop()
            memo[tree_id] = _collect(tree, memo, index, judge)
    return memo


def _collect(tree: Tree, memo: dict[bytes, _Below], index: BlobIndex, judge: _Judge) -> _Below:
    items: list[tuple[str, bytes, str, bool]] = []
    count = 0
    for node in tree.nodes:
        if node.type is NodeType.DIR and node.subtree is not None:
            child = memo.get(node.subtree, _CLEAN)  # absent only for a tree that contains itself
            count += child.count
            room = MISSING_LISTED - len(items)
            items.extend((f"{node.name}/{p}" if p else node.name, b, r, st) for p, b, r, st in child.items[:room])
            continue
        for blob in node.content:
            judged = judge.reason(index, blob)
            if judged is not None:
                count += 1
                if len(items) < MISSING_LISTED:
                    items.append((node.name, blob, *judged))
    return _Below(tuple(items), count) if count else _CLEAN


def blob_type_at(index: BlobIndex, position: int) -> BlobType:
    return index.at(position)[1].type
