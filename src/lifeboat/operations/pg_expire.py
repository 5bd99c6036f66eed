"""``pg prune-wal`` and the WAL half of ``forget``: remove archived WAL no kept base backup
can read again (the rules are :mod:`lifeboat.core.wal_expiry`).

``pg prune-wal`` keeps what the base backups in the repository need; ``forget`` applying a
PostgreSQL source's policy calls :func:`expire_system` with the backups its decision keeps,
inside its own (exclusive) lock, so the snapshots and the WAL go in one step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lifeboat.core.basebackup import BaseBackup, base_backups
from lifeboat.core.wal_expiry import RemovedRange, plan_wal_expiry
from lifeboat.errors import ObjectNotFound, StorageNotFound
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive, archived_systems


@dataclass
class WalExpiry:
    system_id: str
    keep_from: str  # the oldest kept backup's start segment ("" when no backup is kept)
    reason: str = ""
    horizon_backup: str = ""
    removed: list[str] = field(default_factory=list)
    removed_bytes: int = 0
    ranges: list[RemovedRange] = field(default_factory=list)
    kept: int = 0
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "system_id": self.system_id,
            "keep_from": self.keep_from,
            "horizon_backup": self.horizon_backup,
            "reason": self.reason,
            "removed": len(self.removed),
            "removed_bytes": self.removed_bytes,
            "kept": self.kept,
            "first_removed": self.removed[0] if self.removed else None,
            "last_removed": self.removed[-1] if self.removed else None,
            "ranges": [r.to_json() for r in self.ranges],
            "dry_run": self.dry_run,
        }


def expire_system(repo: Repository, system_id: str, kept: Iterable[BaseBackup], *, dry_run: bool) -> WalExpiry:
    """Remove (or, dry, list) ``system_id``'s WAL that none of ``kept`` needs. The caller holds
    a repository lock."""
    archive = WalArchive(repo, system_id)
    listing = archive.listing()
    plan = plan_wal_expiry(system_id, kept, zip(listing.names, listing.sizes, strict=True))
    result = WalExpiry(
        system_id,
        plan.horizon.name if plan.horizon else "",
        reason=plan.reason,
        horizon_backup=plan.horizon_backup,
        kept=plan.kept,
        dry_run=dry_run,
    )
    gone: list[tuple[str, int]] = []
    for name, size in plan.remove:
        if not dry_run:
            try:
                archive.delete(name)
            except StorageNotFound:
                continue
        gone.append((name, size))
    result.removed = [name for name, _size in gone]
    result.removed_bytes = sum(size for _name, size in gone)
    plan.remove = gone
    result.ranges = plan.ranges
    return result


def expire_wal(
    repo: Repository, *, system_id: str | None = None, dry_run: bool = False, lock_wait: float = 0.0
) -> list[WalExpiry]:
    """Remove the WAL older than every base backup, per database system."""
    results: list[WalExpiry] = []
    with repo.lock(exclusive=False, operation="prune-wal", wait=lock_wait):
        backups = base_backups(repo.snapshots())
        systems = sorted({b.system_id for b in backups} | set(archived_systems(repo)))
        if system_id:
            if system_id not in systems:
                raise ObjectNotFound(f"the repository holds nothing of database system {system_id}")
            systems = [system_id]
        for system in systems:
            mine = [b for b in backups if b.system_id == system]
            if mine:
                results.append(expire_system(repo, system, mine, dry_run=dry_run))
    return results
