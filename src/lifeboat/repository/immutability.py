"""Keeping object locks (S3 Object Lock) long enough for the snapshots that need them.

A locked write protects an object for the lock period from the moment it is written.
Deduplication makes a new snapshot use packs written long before, whose locks may be
about to end, so ``prune`` calls :func:`extend_object_locks`: every object a snapshot
younger than the lock period needs is kept locked until at least that snapshot's time
plus the period. Objects only older snapshots use are left alone, so their locks run
out and forget/prune can remove them. An extension goes ``slack`` past the date needed,
so a daily prune does not rewrite every lock every day.

The walk visits each tree once, newest snapshots first, so every pack gets the date of
the newest snapshot that uses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import NodeType
from lifeboat.errors import StorageError, TransientStorageError
from lifeboat.repository import layout
from lifeboat.repository.index import BlobIndex
from lifeboat.repository.reachability import Bitmap
from lifeboat.repository.repo import Repository
from lifeboat.storage.base import ObjectLock, connections, object_lock


@dataclass
class LockExtension:
    """What :func:`extend_object_locks` did."""

    period: timedelta
    snapshots: int = 0  # snapshots inside the lock period
    objects: int = 0  # objects whose lock was checked
    extended: int = 0  # objects whose lock was moved forward
    until: datetime | None = None  # the latest date any object now needs
    failed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "period_seconds": int(self.period.total_seconds()),
            "snapshots": self.snapshots,
            "objects": self.objects,
            "extended": self.extended,
            "until": self.until.isoformat() if self.until else None,
            "failed": self.failed,
        }


def lock_targets(repo: Repository, snapshots: list[Snapshot], period: timedelta) -> dict[str, datetime]:
    """Each object the ``snapshots`` need, with the date it must stay locked until."""
    index: BlobIndex = repo.index()
    index.compact()
    seen = Bitmap(len(index))
    targets: dict[str, datetime] = {}

    def need(blob: bytes, until: datetime) -> bool:
        position = index.position(blob)
        if position < 0 or not seen.add(position):
            return False
        location = index.lookup(blob)
        if location is not None:
            targets.setdefault(layout.pack_name(location.pack_id.hex()), until)
        return True

    for snapshot in sorted(snapshots, key=lambda s: s.time, reverse=True):
        until = snapshot.time + period
        targets.setdefault(layout.snapshot_name(snapshot.id), until)
        stack = [snapshot.tree]
        while stack:
            tree_id = stack.pop()
            if not need(tree_id, until):
                continue
            for node in repo.load_tree(tree_id).nodes:
                if node.type is NodeType.DIR and node.subtree is not None:
                    stack.append(node.subtree)
                for blob in node.content:
                    need(blob, until)
    if targets:
        latest = max(targets.values())
        for name in (*(layout.index_name(i) for i in repo.index_ids()), layout.HEADER):
            targets[name] = latest
        for info in repo.backend.list(layout.KEYS):
            targets[info.name] = latest
    return targets


def extend_object_locks(
    repo: Repository,
    *,
    now: datetime,
    slack: float = 0.25,
    progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> LockExtension | None:
    """Extend the locks that recent snapshots rely on; None when the storage locks nothing."""
    lock = object_lock(repo.backend)
    if lock is None or lock.lock_period is None:
        return None
    period = lock.lock_period
    result = LockExtension(period)
    young = [s for s in repo.snapshots() if s.time > now - period]
    result.snapshots = len(young)
    repo.forget_index()
    targets = lock_targets(repo, young, period)
    result.objects = len(targets)
    if not targets:
        return result
    result.until = max(targets.values())
    extra = period * slack
    if progress is not None:
        progress(f"checking the object locks of {len(targets)} objects")

    def extend(item: tuple[str, datetime]) -> tuple[str, bool | None]:
        name, until = item
        return name, _with_retries(lock, name, until, extra, sleep)

    with ThreadPoolExecutor(max_workers=max(2, connections(repo.backend))) as pool:
        for name, extended in pool.map(extend, sorted(targets.items())):
            if extended is None:
                result.failed.append(name)
            elif extended:
                result.extended += 1
    return result


def _with_retries(
    lock: ObjectLock, name: str, until: datetime, extra: timedelta, sleep: Callable[[float], None]
) -> bool | None:
    """Extend one lock (to ``until + extra`` when it needs extending); None if the storage refused."""
    for attempt in range(4):
        try:
            return lock.extend_lock(name, until, to=until + extra)
        except TransientStorageError:
            sleep(0.2 * 2**attempt)
        except StorageError:
            return None
    return None
