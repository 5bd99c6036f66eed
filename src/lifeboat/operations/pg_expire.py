"""``pg prune-wal``: remove archived WAL that no remaining base backup can use.

Recovery starts at a base backup's start segment, so a segment (or ``.partial``, or
``.backup`` file) numbered below the oldest remaining backup's start segment — on any
timeline — can never be read again. Timeline history files are kept: they are tiny and
recovery needs them to find its way. Run it after ``forget``; without any base backup
nothing is removed (the archive would be useless, but it may be all there is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lifeboat.core.basebackup import base_backups
from lifeboat.core.wal import WalFileKind
from lifeboat.errors import ObjectNotFound, StorageNotFound
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive, archived_systems


@dataclass
class WalExpiry:
    system_id: str
    keep_from: str  # the oldest backup's start segment
    removed: list[str] = field(default_factory=list)
    removed_bytes: int = 0
    kept: int = 0
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "system_id": self.system_id,
            "keep_from": self.keep_from,
            "removed": len(self.removed),
            "removed_bytes": self.removed_bytes,
            "kept": self.kept,
            "first_removed": self.removed[0] if self.removed else None,
            "last_removed": self.removed[-1] if self.removed else None,
            "dry_run": self.dry_run,
        }


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
            if not mine:
                continue
            oldest = min(mine, key=lambda b: b.start_segment.number)
            keep_from = oldest.start_segment
            archive = WalArchive(repo, system)
            result = WalExpiry(system, keep_from.name, dry_run=dry_run)
            for archived in sorted(archive.files(), key=lambda f: f.name):
                parsed = archived.parsed
                if parsed.kind is WalFileKind.HISTORY:
                    result.kept += 1
                    continue
                if parsed.segment(oldest.wal_segment_size).number >= keep_from.number:
                    result.kept += 1
                    continue
                if not dry_run:
                    try:
                        archive.delete(archived.name)
                    except StorageNotFound:
                        continue
                result.removed.append(archived.name)
                result.removed_bytes += archived.stored_bytes
            results.append(result)
    return results
