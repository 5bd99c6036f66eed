"""Restore use cases: a snapshot (or part of it) onto disk, into a program or a server
through its kind (:func:`restore_source`), or one file to a stream."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from lifeboat.core.events import Events
from lifeboat.core.patterns import PathFilter
from lifeboat.core.snapshot import Snapshot, SnapshotFilter
from lifeboat.core.tree import NodeType
from lifeboat.core.treewalk import find
from lifeboat.errors import ObjectNotFound, UsageError
from lifeboat.operations.read_lock import read_lock
from lifeboat.operations.records import RecordCache
from lifeboat.repository.repo import Repository
from lifeboat.sources.base import IntoDirectory, IntoProgram, RestoreContext, Restored, RestoreDestination, SourceKind
from lifeboat.sources.files.kind import FilesSource
from lifeboat.sources.files.restorer import RestoreOptions, RestoreResult
from lifeboat.sources.plan import RestorePlan


@dataclass
class SnapshotRestore:
    snapshot: Snapshot
    result: RestoreResult
    subpath: str


def split_ref(ref: str) -> tuple[str, str]:
    """``abc123:/srv/app`` → (``abc123``, ``srv/app``); a plain ref has an empty subpath."""
    snapshot, _, subpath = ref.partition(":")
    return snapshot, subpath.strip("/")


def resolve(repo: Repository, ref: str, selection: SnapshotFilter | None = None) -> Snapshot:
    candidates = selection.apply(repo.snapshots()) if selection is not None and ref.startswith("latest") else None
    return repo.resolve_snapshot(ref, candidates=candidates)


@dataclass
class SourceRestore:
    """What a restore through a kind restored, from which snapshot."""

    snapshot: Snapshot
    result: Restored
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json()


def restore_source(
    repo: Repository,
    kind: SourceKind,
    ref: str,
    into: RestoreDestination,
    *,
    selection: SnapshotFilter | None = None,
    use_lock: bool = True,
    events: Events | None = None,
    config: Any = None,
    environment: Mapping[str, str] | None = None,
) -> SourceRestore:
    """Restore ``ref`` (``id``, ``latest`` or ``id:/sub/path``) through ``kind`` into ``into``.

    Under a shared lock (unless ``use_lock`` is off), so prune cannot remove data being read.
    """
    events = (events or Events()).for_operation("restore")
    kind.check_restore(into)
    snapshot_ref, into = _with_subpath(ref, into)
    with read_lock(repo, use_lock=use_lock):
        snapshot = resolve(repo, snapshot_ref, selection)
        ctx = RestoreContext(loader=repo, events=events, config=config, environment=environment)
        started = time.monotonic()
        with events.phase("restore", "restoring", counts=True):
            result = kind.restore(ctx, snapshot, into)
    done = SourceRestore(snapshot, result, time.monotonic() - started)
    events.result(done.to_json())
    return done


def _with_subpath(ref: str, into: RestoreDestination) -> tuple[str, RestoreDestination]:
    """The snapshot part of ``ref``, and ``into`` narrowed to its ``:/sub/path`` if it names one."""
    snapshot_ref, subpath = split_ref(ref)
    if subpath and isinstance(into, IntoDirectory) and not into.subpath:
        into = replace(into, subpath=subpath)
    elif subpath and isinstance(into, IntoProgram) and not into.path:
        into = replace(into, path=subpath)
    return snapshot_ref, into


def plan_source(
    repo: Repository,
    kind: SourceKind,
    ref: str,
    into: RestoreDestination,
    *,
    selection: SnapshotFilter | None = None,
    use_lock: bool = True,
    config: Any = None,
    environment: Mapping[str, str] | None = None,
    source: str | None = None,
    records: RecordCache | None = None,
) -> RestorePlan:
    """What :func:`restore_source` would do with the same arguments, nothing written (the
    kind's ``plan``), with the time it should take from the last drill of ``source`` (default:
    the snapshot's source), read from the drill records (``records``: their local cache)."""
    from lifeboat.operations.restore_plan import estimate, measured_rates

    kind.check_restore(into)
    snapshot_ref, into = _with_subpath(ref, into)
    with read_lock(repo, use_lock=use_lock):
        snapshot = resolve(repo, snapshot_ref, selection)
        ctx = RestoreContext(loader=repo, events=Events(), config=config, environment=environment)
        plan = kind.plan(ctx, snapshot, into)
        plan.estimate = estimate(plan.bytes, measured_rates(repo, source or snapshot.source, records))
    return plan


def restore_snapshot(
    repo: Repository,
    ref: str,
    options: RestoreOptions,
    *,
    selection: SnapshotFilter | None = None,
    use_lock: bool = True,
    events: Events | None = None,
) -> SnapshotRestore:
    """Restore ``ref`` (``id``, ``latest`` or ``id:/sub/path``) below ``options.target``."""
    into = IntoDirectory(
        path=options.target,
        filter=options.filter,
        force=options.force,
        dry_run=options.dry_run,
        workers=options.workers,
        restore_owner=options.restore_owner,
    )
    # Any snapshot's tree is laid down by the files kind, whatever kind made it.
    done = restore_source(repo, FilesSource(), ref, into, selection=selection, use_lock=use_lock, events=events)
    result = done.result
    assert isinstance(result, RestoreResult)
    return SnapshotRestore(done.snapshot, result, split_ref(ref)[1])


def dump_file(
    repo: Repository,
    ref: str,
    path: str,
    out: BinaryIO,
    *,
    selection: SnapshotFilter | None = None,
    use_lock: bool = True,
) -> int:
    """Write the content of one file of a snapshot to ``out``; returns the bytes written."""
    with read_lock(repo, use_lock=use_lock):
        snapshot = resolve(repo, ref, selection)
        node = find(repo, snapshot.tree, path)
        if node is None:
            raise ObjectNotFound(f"snapshot {snapshot.short_id} has no path /{path.strip('/')}")
        if node.type is not NodeType.FILE:
            raise UsageError(f"/{path.strip('/')} is a {node.type.value}, not a file", hint="'lifeboat ls' lists it")
        written = 0
        for data in repo.load_blobs(node.content):
            out.write(data)
            written += len(data)
        out.flush()
    return written


__all__ = [
    "PathFilter",
    "RestoreOptions",
    "SnapshotRestore",
    "SourceRestore",
    "dump_file",
    "plan_source",
    "restore_snapshot",
    "restore_source",
    "split_ref",
]
