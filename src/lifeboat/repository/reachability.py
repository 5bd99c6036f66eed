"""Which blobs the snapshots use: the mark phase shared by check, prune and stats.

Marks live in a bitmap over the index's dense blob positions (one bit per blob), and
each tree is walked once however many snapshots share it.
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

    def describe(self) -> str:
        where = f"/{self.path}" if self.path else "its root tree"
        return f"snapshot {self.snapshot[:8]}: {where} needs blob {short(self.blob)}, which is {self.reason}"


@dataclass
class Reachability:
    used: Bitmap
    missing: list[MissingData] = field(default_factory=list)
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
    return result


def blob_type_at(index: BlobIndex, position: int) -> BlobType:
    return index.at(position)[1].type
