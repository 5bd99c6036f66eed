"""``prune``: remove data no snapshot uses, safely.

Mark every blob the snapshots reach; refuse to go on if any is missing (a damaged
repository is repaired first, never pruned). Then, per pack: keep it when all its blobs
are used, delete it when none are, and repack it (copy the used blobs into new packs)
when more than ``repack_threshold`` of it is unused. Packs that no index lists were left
by interrupted backups: they are deleted only once older than the safety margin, in
case a backup whose lock we cannot see is still writing them. The same margin applies to
the temporary files a killed writer leaves on local disk or SFTP (never listed as objects).

Order: new packs (repack) → new index files (the last supersedes the old) → old index
files removed → packs removed. The index files are also rewritten when many small ones
(one per backup) could be a few, and the snapshots gathered into one bundle
(:func:`refresh_bundle`), so a host's first reading of a large repository is a few reads.
A crash at any step leaves a readable repository; what was not removed yet is removed by
the next prune. Prune needs the exclusive lock, so no backup can be writing while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lifeboat.core.ids import short
from lifeboat.errors import IntegrityError, ObjectNotFound, StorageError, StorageNotFound, StoragePermissionDenied
from lifeboat.repository import layout
from lifeboat.repository.bundle import SnapshotBundle
from lifeboat.repository.immutability import LockExtension
from lifeboat.repository.index import MAX_ENTRIES_PER_FILE, BlobIndex, IndexedPack, IndexFile
from lifeboat.repository.pack import PackEntry
from lifeboat.repository.reachability import Bitmap, mark
from lifeboat.repository.repo import READ_PARALLELISM, Repository, object_hash
from lifeboat.repository.session import WriteSession
from lifeboat.storage.base import ObjectInfo, temporaries

DEFAULT_MARGIN = timedelta(hours=1)
# The live index files are rewritten into full ones when there are more than this many and
# they hold under half of what as many full files would: every backup writes one of its own.
CONSOLIDATE_ABOVE = 32


@dataclass
class PackVerdict:
    pack_id: bytes
    size: int
    used_bytes: int
    unused_bytes: int
    action: str  # keep | delete | repack | orphan-delete | orphan-keep
    reason: str
    used_entries: list[PackEntry] = field(default_factory=list, repr=False)  # for repack


@dataclass
class PrunePlan:
    verdicts: list[PackVerdict] = field(default_factory=list)
    old_index_ids: list[str] = field(default_factory=list)
    blobs_used: int = 0
    temporaries: list[ObjectInfo] = field(default_factory=list)  # left by killed writers, past the margin
    consolidate: int = 0  # live index files to rewrite into fewer (0: they stay)

    def of(self, action: str) -> list[PackVerdict]:
        return [v for v in self.verdicts if v.action == action]

    def bytes_of(self, action: str) -> int:
        return sum(v.size for v in self.of(action))

    @property
    def changes_anything(self) -> bool:
        return (
            bool(self.temporaries)
            or self.consolidate > 0
            or any(v.action in ("delete", "repack", "orphan-delete") for v in self.verdicts)
        )

    def to_json(self) -> dict[str, object]:
        summary: dict[str, object] = {
            action: {"packs": len(self.of(action)), "bytes": self.bytes_of(action)}
            for action in ("keep", "delete", "repack", "orphan-delete", "orphan-keep")
        }
        summary["bytes_unused_in_kept"] = sum(v.unused_bytes for v in self.of("keep"))
        summary["blobs_used"] = self.blobs_used
        summary["temporaries"] = {"files": len(self.temporaries), "bytes": sum(t.size for t in self.temporaries)}
        summary["index_files_consolidated"] = self.consolidate
        return summary


@dataclass
class PruneResult:
    plan: PrunePlan
    packs_deleted: int = 0
    bytes_freed: int = 0
    packs_written: int = 0
    temporaries_removed: int = 0
    not_removed: list[str] = field(default_factory=list)  # refused by the storage (object lock)
    object_locks: LockExtension | None = None  # locks extended for recent snapshots (object-lock storage)
    bundle: BundleResult | None = None  # the snapshots gathered into one bundle

    def to_json(self) -> dict[str, object]:
        return {
            "plan": self.plan.to_json(),
            "packs_deleted": self.packs_deleted,
            "bytes_freed": self.bytes_freed,
            "packs_written": self.packs_written,
            "temporaries_removed": self.temporaries_removed,
            "not_removed": self.not_removed,
            "object_locks": self.object_locks.to_json() if self.object_locks is not None else None,
            "bundle": self.bundle.to_json() if self.bundle is not None else None,
        }


@dataclass
class BundleResult:
    """What :func:`refresh_bundle` did: the bundle it wrote (None: the one there was already
    right, or there are no snapshots), how many snapshots it holds, the older bundles removed."""

    written: str | None = None
    snapshots: int = 0
    fetched: int = 0  # snapshot objects read one by one (the rest came from the older bundles)
    removed: int = 0
    not_removed: list[str] = field(default_factory=list)  # refused by the storage (object lock)

    def to_json(self) -> dict[str, object]:
        return {
            "written": self.written,
            "snapshots": self.snapshots,
            "fetched": self.fetched,
            "removed": self.removed,
            "not_removed": self.not_removed,
        }


def _is_used(index: BlobIndex, used: Bitmap, pack_id: bytes, entry: PackEntry) -> bool:
    """A blob counts as used in this pack only where the index resolves it to this pack."""
    location = index.lookup(entry.id)
    return location is not None and location.pack_id == pack_id and index.position(entry.id) in used


def plan_prune(
    repo: Repository,
    *,
    now: datetime,
    margin: timedelta = DEFAULT_MARGIN,
    repack_threshold: float = 0.10,
) -> PrunePlan:
    repo.forget_index()
    index = repo.index()
    plan = PrunePlan(old_index_ids=repo.index_ids())
    reach = mark(repo, repo.snapshots(), index=index)
    if reach.missing:
        blobs = len({m.blob for m in reach.missing})  # a blob several snapshots need is listed for each
        raise IntegrityError(
            f"refusing to prune: {blobs} blob(s) the snapshots need are missing or unreadable "
            f"({reach.missing[0].describe()})",
            hint="run 'lifeboat check' and repair the repository before pruning",
        )
    plan.blobs_used = reach.trees + reach.data_blobs
    listed = {bytes.fromhex(layout.pack_id_of(i.name)): i for i in repo.backend.list(layout.DATA)}
    missing: list[bytes] = []
    indexed, live_files = _indexed_packs(repo, plan.old_index_ids)
    for pack_id, entries in indexed:
        info = listed.pop(pack_id, None)
        if info is None:
            if any(_is_used(index, reach.used, pack_id, e) for e in entries):
                missing.append(pack_id)
            continue
        used = sum(e.length for e in entries if _is_used(index, reach.used, pack_id, e))
        unused = sum(e.length for e in entries) - used
        if used == 0:
            verdict = PackVerdict(pack_id, info.size, 0, unused, "delete", "no snapshot uses it")
        elif unused > repack_threshold * (used + unused):
            verdict = PackVerdict(
                pack_id,
                info.size,
                used,
                unused,
                "repack",
                f"{unused * 100 // (used + unused)}% unused",
                [e for e in entries if _is_used(index, reach.used, pack_id, e)],
            )
        else:
            verdict = PackVerdict(pack_id, info.size, used, unused, "keep", "in use")
        plan.verdicts.append(verdict)
    if missing:
        raise IntegrityError(
            f"refusing to prune: {len(missing)} pack(s) holding data the snapshots need are missing "
            f"(pack {short(missing[0])})",
            hint="run 'lifeboat check' and repair the repository before pruning",
        )
    for pack_id, info in listed.items():
        age = now.timestamp() - info.mtime
        if age >= margin.total_seconds():
            plan.verdicts.append(PackVerdict(pack_id, info.size, 0, info.size, "orphan-delete", "in no index"))
        else:
            plan.verdicts.append(
                PackVerdict(pack_id, info.size, 0, info.size, "orphan-keep", "in no index, younger than the margin")
            )
    plan.consolidate = consolidation(live_files, sum(len(entries) for _, entries in indexed))
    leftovers = temporaries(repo.backend)
    if leftovers is not None:
        cutoff = now.timestamp() - margin.total_seconds()
        plan.temporaries = [t for t in leftovers.temporaries() if t.mtime <= cutoff]
    return plan


def _indexed_packs(repo: Repository, index_ids: list[str]) -> tuple[list[tuple[bytes, list[PackEntry]]], int]:
    """Every pack the live index files list, once, with its entries; and how many live files list them."""
    files = dict(repo.load_index_files(index_ids))
    superseded = {s.hex() for f in files.values() for s in f.supersedes}
    seen: dict[bytes, list[PackEntry]] = {}
    live = 0
    for index_id, index_file in files.items():
        if index_id in superseded:
            continue
        live += 1
        for pack in index_file.packs:
            seen.setdefault(pack.pack_id, pack.entries)
    return list(seen.items()), live


def consolidation(live_files: int, entries: int) -> int:
    """How many live index files a rewrite folds into fewer: all of them when there are more
    than CONSOLIDATE_ABOVE holding under half of what as many full files hold, else 0."""
    if live_files <= CONSOLIDATE_ABOVE or entries >= live_files * MAX_ENTRIES_PER_FILE // 2:
        return 0
    return live_files


def execute_prune(repo: Repository, plan: PrunePlan, *, progress: Callable[[str], None] | None = None) -> PruneResult:
    """Carry out a plan made under the same exclusive lock."""
    say = progress or (lambda _msg: None)
    result = PruneResult(plan)
    repack = plan.of("repack")
    remove = {v.pack_id for v in plan.verdicts if v.action in ("delete", "repack", "orphan-delete")}
    if repack:
        say(f"repacking {len(repack)} packs")
        # A fresh index, so the blobs are stored again instead of deduplicated against
        # the packs they are leaving.
        with WriteSession(repo, index=BlobIndex()) as fresh:
            for verdict in repack:
                data = repo.backend.get(layout.pack_name(verdict.pack_id.hex()))
                for entry in verdict.used_entries:
                    location = repo.locate(entry.id)
                    ciphertext = data[entry.offset : entry.offset + entry.length]
                    fresh.save_blob(entry.type, repo.decode_blob(entry.id, location, ciphertext), entry.id)
            stats = fresh.commit()
        result.packs_written = stats.packs
    if remove or plan.consolidate:
        say("writing the new index" if remove else f"rewriting {plan.consolidate} index files into fewer")
        _rewrite_index(repo, plan.old_index_ids, exclude=remove)
        for index_id in plan.old_index_ids:
            if delete_object(repo, layout.index_name(index_id)) is False:
                result.not_removed.append(f"index/{index_id}")
    if remove:
        say(f"removing {len(remove)} packs")
        for verdict in plan.verdicts:
            if verdict.pack_id not in remove:
                continue
            deleted = delete_object(repo, layout.pack_name(verdict.pack_id.hex()))
            if deleted:
                result.packs_deleted += 1
                result.bytes_freed += verdict.size
            elif deleted is False:
                result.not_removed.append(f"pack {short(verdict.pack_id)}")
    leftovers = temporaries(repo.backend)
    if plan.temporaries and leftovers is not None:
        say(f"removing {len(plan.temporaries)} temporary files left by interrupted writers")
        for leftover in plan.temporaries:
            leftovers.remove_temporary(leftover.name)
            result.temporaries_removed += 1
            result.bytes_freed += leftover.size
    repo.forget_index()
    return result


def refresh_bundle(
    repo: Repository, snapshot_ids: list[str], *, progress: Callable[[str], None] | None = None
) -> BundleResult:
    """Make one bundle hold exactly the snapshots ``snapshot_ids`` (the listing, under the
    exclusive lock), each as an intact copy, and remove the others. When none does yet, write
    one: copies from the older bundles that still match their names, the rest fetched. A
    bundle the storage will not delete yet (object lock) stays until a later prune."""
    say = progress or (lambda _msg: None)
    result = BundleResult(snapshots=len(snapshot_ids))
    wanted = set(snapshot_ids)
    held: dict[str, dict[str, bytes]] = {}  # bundle id → its intact copies of listed snapshots
    keep: str | None = None  # a bundle already right: kept, the others removed
    for bundle_id in repo.bundle_ids():
        try:
            bundle = repo.load_bundle(bundle_id).objects
        except (ObjectNotFound, IntegrityError):
            bundle = {}  # damaged: removed below
        held[bundle_id] = {i: data for i, data in bundle.items() if i in wanted and object_hash(data) == i}
        if keep is None and wanted and len(bundle) == len(wanted) == len(held[bundle_id]):
            keep = bundle_id
    if keep is None and wanted:
        objects: dict[str, bytes] = {}
        for copies in held.values():
            objects.update(copies)
        rest = sorted(wanted.difference(objects))
        say(f"bundling {len(wanted)} snapshots ({len(rest)} to read)")

        def fetch(snapshot_id: str) -> bytes | None:
            try:
                repo.ensure_locked()
                return repo.backend.get(layout.snapshot_name(snapshot_id))
            except StorageNotFound:
                return None

        with ThreadPoolExecutor(max_workers=READ_PARALLELISM) as pool:
            for snapshot_id, data in zip(rest, pool.map(fetch, rest), strict=True):
                if data is not None and object_hash(data) == snapshot_id:  # a damaged one stays out
                    objects[snapshot_id] = data
                    result.fetched += 1
        result.snapshots = len(objects)
        if objects:
            keep = result.written = repo.save_bundle(SnapshotBundle(objects))
    for bundle_id in held:
        if bundle_id == keep:
            continue
        deleted = delete_object(repo, layout.bundle_name(bundle_id))
        if deleted:
            result.removed += 1
        elif deleted is False:
            result.not_removed.append(f"bundle {bundle_id[:8]}")
    return result


def delete_object(repo: Repository, name: str) -> bool | None:
    """Delete object ``name`` under the held lock: True when deleted, None when it was gone
    already, False when the storage refuses (an object lock; a later prune tries again)."""
    try:
        repo.ensure_locked()
        repo.backend.delete(name)
    except StorageNotFound:
        return None
    except StoragePermissionDenied:
        return False
    return True


def _rewrite_index(repo: Repository, old_ids: list[str], *, exclude: set[bytes]) -> None:
    """Write index files for every pack the old ones list except ``exclude``; the last supersedes them."""
    batch: list[IndexedPack] = []
    entries = 0  # in the batch (a sum over the batch per pack was quadratic: 24 s for 10,000 packs)
    files = dict(repo.load_index_files(old_ids))
    superseded = {s.hex() for f in files.values() for s in f.supersedes}
    written: set[bytes] = set()
    for index_id, index_file in files.items():
        if index_id in superseded:
            continue
        for pack in index_file.packs:
            if pack.pack_id in exclude or pack.pack_id in written:
                continue
            written.add(pack.pack_id)
            batch.append(pack)
            entries += len(pack.entries)
            if entries >= MAX_ENTRIES_PER_FILE:
                repo.save_index_file(IndexFile(batch))
                batch, entries = [], 0
    repo.save_index_file(IndexFile(batch, supersedes=[bytes.fromhex(i) for i in old_ids]))


__all__ = [
    "DEFAULT_MARGIN",
    "BundleResult",
    "PrunePlan",
    "PruneResult",
    "StorageError",
    "execute_prune",
    "plan_prune",
    "refresh_bundle",
]
