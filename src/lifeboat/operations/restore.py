"""Restore use cases: a snapshot (or part of it) onto disk, or one file to a stream."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from lifeboat.core.patterns import PathFilter
from lifeboat.core.progress import NoticeSink, Progress
from lifeboat.core.snapshot import Snapshot, SnapshotFilter
from lifeboat.core.tree import NodeType, Tree
from lifeboat.core.treewalk import find
from lifeboat.errors import ObjectNotFound, UsageError
from lifeboat.repository.repo import Repository
from lifeboat.sources.files.restorer import (
    FileRestorer,
    RestoreOptions,
    RestoreResult,
)


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


@contextlib.contextmanager
def read_lock(repo: Repository, *, use_lock: bool, wait: float = 0.0) -> Iterator[None]:
    """A shared lock, so prune cannot remove data while it is read (``--no-lock`` skips it)."""
    if not use_lock:
        yield
        return
    with repo.lock(exclusive=False, operation="read", wait=wait):
        yield


def restore_snapshot(
    repo: Repository,
    ref: str,
    options: RestoreOptions,
    *,
    selection: SnapshotFilter | None = None,
    use_lock: bool = True,
    progress: Progress | None = None,
    notify: NoticeSink | None = None,
) -> SnapshotRestore:
    """Restore ``ref`` (``id``, ``latest`` or ``id:/sub/path``) below ``options.target``."""
    snapshot_ref, subpath = split_ref(ref)
    with read_lock(repo, use_lock=use_lock):
        snapshot = resolve(repo, snapshot_ref, selection)
        tree_id = snapshot.tree
        if subpath:
            node = find(repo, snapshot.tree, subpath)
            if node is None:
                raise ObjectNotFound(f"snapshot {snapshot.short_id} has no path /{subpath}")
            # A directory's contents go straight into the target; a single entry goes into it.
            tree = repo.load_tree(node.subtree) if node.subtree is not None else Tree((node,))
        else:
            tree = repo.load_tree(tree_id)
        result = FileRestorer(repo, options, progress=progress, notify=notify).restore(tree)
    return SnapshotRestore(snapshot, result, subpath)


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


__all__ = ["PathFilter", "RestoreOptions", "SnapshotRestore", "dump_file", "restore_snapshot", "split_ref"]
