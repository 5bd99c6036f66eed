"""Maintenance use cases: retention (forget), garbage collection (prune), check, repair,
statistics and locks. Each takes the lock its work needs.

``forget`` applying a PostgreSQL source's policy also expires that source's archived WAL:
what no base backup left afterwards can read (:mod:`lifeboat.core.wal_expiry`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from lifeboat.core.basebackup import KIND as POSTGRES_KIND
from lifeboat.core.basebackup import BaseBackup, base_backups
from lifeboat.core.events import Events
from lifeboat.core.retention import Decision, GroupKey, RetentionPolicy, apply_policy
from lifeboat.core.snapshot import Snapshot, SnapshotFilter
from lifeboat.errors import IntegrityError, StoragePermissionDenied
from lifeboat.operations.read_lock import read_lock
from lifeboat.repository.check import Checker, CheckResult, DataSubset
from lifeboat.repository.gc import DEFAULT_MARGIN, PruneResult, execute_prune, plan_prune, refresh_bundle
from lifeboat.repository.immutability import extend_object_locks
from lifeboat.repository.lock import LockRecord
from lifeboat.repository.reachability import mark
from lifeboat.repository.repair import RepairResult, rebuild_index
from lifeboat.repository.repo import Repository

if TYPE_CHECKING:
    from lifeboat.operations.pg_expire import WalExpiry


@dataclass
class ForgetResult:
    groups: dict[GroupKey, list[Decision]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    not_removed: list[str] = field(default_factory=list)  # refused by the storage (object lock)
    dry_run: bool = False
    policies: dict[GroupKey, str] = field(default_factory=dict)
    wal: list[WalExpiry] = field(default_factory=list)  # per PostgreSQL system the policies judged

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "groups": [
                {
                    "source": key[0],
                    "hostname": key[1] if len(key) > 1 else "",
                    "policy": self.policies.get(key, ""),
                    "keep": [
                        {"id": d.snapshot.id, "time": d.snapshot.time.isoformat(), "reasons": d.reasons}
                        for d in decisions
                        if d.keep
                    ],
                    "remove": [
                        {"id": d.snapshot.id, "time": d.snapshot.time.isoformat()} for d in decisions if not d.keep
                    ],
                }
                for key, decisions in self.groups.items()
            ],
            "removed": self.removed,
            "not_removed": self.not_removed,
            "wal": [w.to_json() for w in self.wal],
        }


PolicyFor = Callable[[Snapshot], RetentionPolicy | None]


def forget(
    repo: Repository,
    policy_for: PolicyFor,
    *,
    selection: SnapshotFilter,
    now: datetime,
    tz: tzinfo,
    dry_run: bool = False,
    lock_wait: float = 0.0,
    events: Events | None = None,
) -> ForgetResult:
    """Apply retention per (source, host) group; snapshots without a policy are kept. The WAL
    of each PostgreSQL system whose base backups a policy judged is expired too, bounded by
    every base backup of that system left in the repository (judged or not).

    Cancellable until the first snapshot is removed; the result is also an event."""
    events = (events or Events()).for_operation("forget")
    result = ForgetResult(dry_run=dry_run)
    with repo.lock(exclusive=True, operation="forget", wait=lock_wait):
        readable, unreadable = repo.snapshots_and_damage()
        if unreadable:
            more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
            raise IntegrityError(
                f"{unreadable[0].describe()}{more}: a retention policy cannot judge a snapshot it cannot read, "
                "so nothing was removed",
                hint=f"'lifeboat forget {unreadable[0].id[:8]}' removes it by id (named snapshots are removed "
                "even when damaged); 'lifeboat check' shows what else is damaged",
            )
        chosen = selection.apply(readable)
        by_policy: dict[RetentionPolicy, list[Snapshot]] = {}
        for snapshot in chosen:
            policy = policy_for(snapshot)
            if policy is not None and not policy.is_empty:
                by_policy.setdefault(policy, []).append(snapshot)
        for policy, members in by_policy.items():
            for key, decisions in apply_policy(members, policy, now, tz=tz).items():
                result.groups[key] = decisions
                result.policies[key] = policy.describe()
        # Read every base backup record before removing anything: a malformed one stops here.
        judged_kinds = {d.snapshot.kind for decisions in result.groups.values() for d in decisions}
        backups = base_backups(readable) if POSTGRES_KIND in judged_kinds else []
        events.check()
        if not dry_run:
            for decisions in result.groups.values():
                for decision in decisions:
                    if not decision.keep:
                        try:
                            repo.delete_snapshot(decision.snapshot.id)
                        except StoragePermissionDenied:
                            result.not_removed.append(decision.snapshot.id)
                            continue
                        result.removed.append(decision.snapshot.id)
        result.wal = _expire_judged_wal(repo, backups, result, dry_run=dry_run)
    events.result(result.to_json())
    return result


def _expire_judged_wal(
    repo: Repository, backups: list[BaseBackup], result: ForgetResult, *, dry_run: bool
) -> list[WalExpiry]:
    """Expire the WAL of the PostgreSQL systems the policies judged, keeping what every base
    backup still in the repository needs (in a dry run: every one the decisions keep)."""
    from lifeboat.operations.pg_expire import expire_system

    judged = {d.snapshot.id for decisions in result.groups.values() for d in decisions}
    systems = sorted({b.system_id for b in backups if b.snapshot_id in judged})
    going = {d.snapshot.id for decisions in result.groups.values() for d in decisions if not d.keep}
    gone = going if dry_run else set(result.removed)
    remaining = [b for b in backups if b.snapshot_id not in gone]
    return [
        expire_system(repo, system, [b for b in remaining if b.system_id == system], dry_run=dry_run)
        for system in systems
    ]


def forget_ids(
    repo: Repository, ids: list[str], *, dry_run: bool = False, lock_wait: float = 0.0, events: Events | None = None
) -> ForgetResult:
    """Remove the named snapshots (id prefixes, or ``latest``). A snapshot named by its id is
    removed without being decoded, so a damaged one can be removed too."""
    events = (events or Events()).for_operation("forget")
    result = ForgetResult(dry_run=dry_run)
    with repo.lock(exclusive=True, operation="forget", wait=lock_wait):
        targets = [
            repo.resolve_snapshot(ref).id if ref.startswith("latest") else repo.resolve_snapshot_id(ref) for ref in ids
        ]
        events.check()
        for snapshot_id in dict.fromkeys(targets):
            if not dry_run:
                try:
                    repo.delete_snapshot(snapshot_id)
                except StoragePermissionDenied:
                    result.not_removed.append(snapshot_id)
                    continue
            result.removed.append(snapshot_id)
    events.result(result.to_json())
    return result


def prune(
    repo: Repository,
    *,
    now: datetime,
    dry_run: bool = False,
    margin: timedelta = DEFAULT_MARGIN,
    repack_threshold: float = 0.10,
    lock_wait: float = 0.0,
    events: Events | None = None,
) -> PruneResult:
    """Remove unreferenced data; its steps are announced as events (``StepAnnounced``)."""
    events = (events or Events()).for_operation("prune")
    with repo.lock(exclusive=True, operation="prune", wait=lock_wait):
        plan = plan_prune(repo, now=now, margin=margin, repack_threshold=repack_threshold)
        if dry_run:
            return PruneResult(plan)
        events.check()  # the last moment a prune can stop without having deleted anything
        result = execute_prune(repo, plan, progress=events.step) if plan.changes_anything else PruneResult(plan)
        # Gather the snapshots into one bundle, so a host reading the repository for the first
        # time reads one object instead of one per snapshot (repository/bundle.py).
        result.bundle = refresh_bundle(repo, repo.snapshot_ids(), progress=events.step)
        # On object-lock storage, keep locked what recent snapshots need (docs/storage.md).
        result.object_locks = extend_object_locks(repo, now=now, progress=events.step)
        return result


def check(
    repo: Repository,
    *,
    read_data: DataSubset | None = None,
    use_lock: bool = True,
    lock_wait: float = 0.0,
    events: Events | None = None,
) -> CheckResult:
    """Check the repository; its steps are announced as events (``StepAnnounced``)."""
    events = (events or Events()).for_operation("check")
    checker = Checker(repo, progress=events.step)
    with read_lock(repo, use_lock=use_lock, wait=lock_wait, operation="check"):
        return checker.run(read_data=read_data)


def repair_index(repo: Repository, *, lock_wait: float = 0.0) -> RepairResult:
    with repo.lock(exclusive=True, operation="repair index", wait=lock_wait):
        return rebuild_index(repo)


def unlock(repo: Repository, *, remove_all: bool = False) -> list[LockRecord]:
    return repo.locks.remove_stale(remove_all=remove_all)


_SUMMARY_COUNTS = ("bytes_total", "files_new", "files_changed", "files_unmodified")


def _summary_counts(snapshot: Snapshot) -> tuple[int, ...] | str:
    """The counts stats adds up from a snapshot's summary, or what is wrong with them."""
    values = []
    for key in _SUMMARY_COUNTS:
        value = snapshot.summary.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"its summary is malformed: {key} is {value!r:.40}, not a count"
        values.append(value)
    return tuple(values)


@dataclass
class RepositoryStats:
    snapshots: int = 0
    packs: int = 0
    stored_bytes: int = 0  # bytes in packs (compressed, encrypted)
    blobs: int = 0
    unique_bytes: int = 0  # plaintext bytes of the blobs the snapshots use
    restore_bytes: int = 0  # sum over snapshots of the file bytes they would restore
    files: int = 0
    problems: list[str] = field(default_factory=list)  # snapshots left out of the sums, and why

    @property
    def dedup_ratio(self) -> float:
        return self.restore_bytes / self.unique_bytes if self.unique_bytes else 0.0

    @property
    def compression_ratio(self) -> float:
        return self.unique_bytes / self.stored_bytes if self.stored_bytes else 0.0

    @property
    def total_ratio(self) -> float:
        return self.restore_bytes / self.stored_bytes if self.stored_bytes else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshots": self.snapshots,
            "files": self.files,
            "packs": self.packs,
            "blobs": self.blobs,
            "restore_bytes": self.restore_bytes,
            "unique_bytes": self.unique_bytes,
            "stored_bytes": self.stored_bytes,
            "dedup_ratio": round(self.dedup_ratio, 3),
            "compression_ratio": round(self.compression_ratio, 3),
            "total_ratio": round(self.total_ratio, 3),
            "problems": self.problems,
        }


def stats(repo: Repository, *, selection: SnapshotFilter | None = None, use_lock: bool = True) -> RepositoryStats:
    """Stored bytes, the bytes the snapshots represent, and the ratios between them."""

    def compute() -> RepositoryStats:
        index = repo.index()
        readable, unreadable = repo.snapshots_and_damage()
        snapshots = (selection or SnapshotFilter()).apply(readable)
        result = RepositoryStats(snapshots=len(snapshots), packs=len(index.pack_ids))
        result.problems.extend(damaged.describe() for damaged in unreadable)
        result.stored_bytes = sum(index.pack_size(p) for p in index.pack_ids)
        reach = mark(repo, snapshots, index=index)
        for i in range(len(index)):
            if i in reach.used:
                result.blobs += 1
                result.unique_bytes += index.at(i)[1].raw_length
        for snapshot in snapshots:
            counts = _summary_counts(snapshot)
            if isinstance(counts, str):
                result.problems.append(f"snapshot {snapshot.short_id}: {counts}")
                continue
            result.restore_bytes += counts[0]
            result.files += sum(counts[1:])
        return result

    with read_lock(repo, use_lock=use_lock, operation="stats"):
        return compute()
