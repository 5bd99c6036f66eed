"""Replication: copy snapshots and archived WAL from one repository to another.

The repositories may live on any backends and have different keys. Blob ids are keyed
hashes, so with different keys every tree is rewritten with the destination's ids; with
the same keys (detected by hashing a probe under both) trees carry over unchanged. Only
blobs the destination lacks are sent, re-encrypted under its keys.

A copied snapshot records its *origin* (the repository and snapshot it first came from)
in ``extra["origin"]``; a snapshot whose origin the destination already holds is not
copied again, so copying is idempotent and chains (A → B → C) and copies back work.
Each snapshot is committed on its own (packs, index, then the snapshot), so an
interrupted copy keeps what it finished and the next run carries on. Unchanged
directories and files are recognised against an earlier copy of the same source (its
*parent*), so a daily copy reads only what changed — even across different keys.

Verification, before the snapshot is written: every blob a rewritten tree refers to must
be stored or on its way in the session; the packs written are read back and every blob in
them is decrypted and checked against its id under the destination's keys
(:meth:`Repository.verify_pack`); and the index files written are confirmed in storage.
Archived WAL files are fetched with the source's keys and archived at the destination by
:class:`~lifeboat.repository.wal.WalArchive`, as ``wal-push`` archives them, then read back.
Records (verify and drill results, :mod:`lifeboat.operations.records`) are re-sealed under the
destination's keys; one whose content the destination already holds is not copied again (a
record's id is the hash of its sealed bytes, so content is what identifies it across keys).

Its steps are announced as events (``StepAnnounced``), the result as ``ResultReady``; a
cancelled copy stops between snapshots, between the files of a snapshot's trees and between
WAL files — what was committed stays, the next run carries on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import blake3

from lifeboat.core.events import Events
from lifeboat.core.ids import BlobType, short
from lifeboat.core.snapshot import Snapshot, SnapshotFilter
from lifeboat.core.trampoline import Nested, run_nested
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.errors import IntegrityError, StorageNotFound, UsageError, WalConflict, WalDamaged
from lifeboat.repository import layout
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession
from lifeboat.repository.wal import PushOutcome, WalArchive, archived_files

ORIGIN = "origin"
_PROBE = b"lifeboat copy: do the two repositories share their blob-id key?"
_BLOB_MEMO_LIMIT = 500_000  # entries of the source→destination blob map kept across snapshots


@dataclass(frozen=True)
class CopiedSnapshot:
    source_id: str
    destination_id: str
    time: str
    source: str
    hostname: str


@dataclass
class CopyResult:
    """What a copy did (``--json`` shows this document)."""

    same_keys: bool = False
    copied: list[CopiedSnapshot] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)  # source snapshot ids
    blobs_read: int = 0  # data blobs read from the source
    blobs_sent: int = 0  # blobs the destination lacked
    blobs_present: int = 0  # blobs the destination had already
    bytes_sent: int = 0  # plaintext bytes of the blobs sent
    packs_written: int = 0
    bytes_stored: int = 0
    packs_verified: int = 0
    wal_copied: int = 0
    wal_present: int = 0
    wal_bytes: int = 0
    records_copied: int = 0
    records_present: int = 0
    records_unreadable: list[str] = field(default_factory=list)  # source record ids that cannot be read
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "same_keys": self.same_keys,
            "copied": [
                {
                    "source_id": c.source_id,
                    "destination_id": c.destination_id,
                    "time": c.time,
                    "source": c.source,
                    "hostname": c.hostname,
                }
                for c in self.copied
            ],
            "already_present": self.already_present,
            "blobs_read": self.blobs_read,
            "blobs_sent": self.blobs_sent,
            "blobs_present": self.blobs_present,
            "bytes_sent": self.bytes_sent,
            "packs_written": self.packs_written,
            "bytes_stored": self.bytes_stored,
            "packs_verified": self.packs_verified,
            "wal": {"copied": self.wal_copied, "present": self.wal_present, "bytes": self.wal_bytes},
            "records": {
                "copied": self.records_copied,
                "present": self.records_present,
                "unreadable": self.records_unreadable,
            },
        }


def origin_of(repo: Repository, snapshot: Snapshot) -> tuple[str, str]:
    """The repository and snapshot id a snapshot was first written as."""
    recorded = snapshot.extra.get(ORIGIN)
    if isinstance(recorded, dict):
        repository, snapshot_id = recorded.get("repository"), recorded.get("snapshot")
        if isinstance(repository, str) and isinstance(snapshot_id, str):
            return repository, snapshot_id
    return repo.header.repository_id, snapshot.id


def share_keys(src: Repository, dst: Repository) -> bool:
    """Whether blob ids carry over: both repositories hash with the same key."""
    return src.blob_id(_PROBE) == dst.blob_id(_PROBE)


# --- trees ----------------------------------------------------------------------------------------
class _TreeCopier:
    """Rewrites trees for the destination and stores the blobs it lacks."""

    def __init__(
        self,
        src: Repository,
        dst: Repository,
        session: WriteSession,
        result: CopyResult,
        *,
        workers: int,
        events: Events | None = None,
    ) -> None:
        self.src = src
        self.events = events or Events()
        self.dst = dst
        self.session = session
        self.result = result
        self.same_keys = result.same_keys
        self.workers = max(1, workers)
        self.tree_memo: dict[bytes, bytes] = {}
        self.blob_memo: dict[bytes, bytes] = {}
        self._memo_guard = threading.Lock()

    def copy_tree(self, tree_id: bytes, parent: tuple[bytes, bytes] | None, pool: ThreadPoolExecutor) -> bytes:
        """The destination id of source tree ``tree_id``, storing whatever the destination lacks.

        ``parent`` pairs a source tree with its copy already at the destination (complete,
        since a snapshot refers to it): identical subtrees and files are taken from it.
        Subtrees are copied first, without recursion (core/trampoline.py): any depth copies.
        """
        return run_nested(self._copy_tree(tree_id, parent, pool))

    def _copy_tree(self, tree_id: bytes, parent: tuple[bytes, bytes] | None, pool: ThreadPoolExecutor) -> Nested[bytes]:
        done = self.tree_memo.get(tree_id)
        if done is not None:
            return done
        if parent is not None and parent[0] == tree_id:
            return parent[1]
        tree = self.src.load_tree(tree_id)
        parent_src: dict[str, Node] = {}
        parent_dst: dict[str, Node] = {}
        if parent is not None:
            parent_src = {n.name: n for n in self.src.load_tree(parent[0]).nodes}
            parent_dst = {n.name: n for n in self.dst.load_tree(parent[1]).nodes}
        files = [n for n in tree.nodes if n.type is NodeType.FILE and n.content]
        contents = dict(
            zip(
                (n.name for n in files),
                pool.map(lambda n: self._copy_content(n, parent_src.get(n.name), parent_dst.get(n.name)), files),
                strict=True,
            )
        )
        nodes: list[Node] = []
        for node in tree.nodes:
            if node.type is NodeType.DIR and node.subtree is not None:
                before_src, before_dst = parent_src.get(node.name), parent_dst.get(node.name)
                child_parent = (
                    (before_src.subtree, before_dst.subtree)
                    if before_src is not None
                    and before_dst is not None
                    and before_src.subtree is not None
                    and before_dst.subtree is not None
                    else None
                )
                subtree = yield self._copy_tree(node.subtree, child_parent, pool)
                nodes.append(_with(node, subtree=subtree))
            elif node.name in contents:
                nodes.append(_with(node, content=contents[node.name]))
            else:
                nodes.append(node)
        for node in nodes:  # everything the new tree refers to is stored or on its way
            for blob in (*node.content, *((node.subtree,) if node.subtree is not None else ())):
                if not self.session.has_blob(blob):
                    raise IntegrityError(f"blob {short(blob)} of /{node.name} is missing at the destination")
        if self.same_keys and tuple(nodes) == tree.nodes:
            # Unchanged with one key: carry the tree blob over as it is, keeping its id.
            if not self.session.has_blob(tree_id):
                self.session.save_blob(BlobType.TREE, self.src.load_blob(tree_id, BlobType.TREE), tree_id)
            new_id = tree_id
        else:
            new_id = self.session.save_tree(Tree(tuple(nodes)))
        self.tree_memo[tree_id] = new_id
        return new_id

    def _copy_content(self, node: Node, before_src: Node | None, before_dst: Node | None) -> tuple[bytes, ...]:
        self.events.check()  # between files: nothing of this snapshot is committed yet
        known: dict[bytes, bytes] = {}
        if (
            before_src is not None
            and before_dst is not None
            and before_src.type is NodeType.FILE
            and before_dst.type is NodeType.FILE
            and len(before_src.content) == len(before_dst.content)
        ):
            known = dict(zip(before_src.content, before_dst.content, strict=True))
        mapped: dict[bytes, bytes] = {}
        missing: list[bytes] = []
        for blob in dict.fromkeys(node.content):
            if self.same_keys:
                if self.session.has_blob(blob):
                    mapped[blob] = blob
                else:
                    missing.append(blob)
                continue
            target = known.get(blob)
            if target is None:
                with self._memo_guard:
                    target = self.blob_memo.get(blob)
            if target is not None:
                mapped[blob] = target
            else:
                missing.append(blob)
        already = len(mapped)
        sent = present = sent_bytes = 0
        for blob, data in zip(missing, self.src.load_blobs(missing), strict=True):
            target = blob if self.same_keys else self.dst.blob_id(data)
            if self.session.save_blob(BlobType.DATA, data, target):
                sent += 1
                sent_bytes += len(data)
            else:
                present += 1
            mapped[blob] = target
            if not self.same_keys:
                with self._memo_guard:
                    if len(self.blob_memo) >= _BLOB_MEMO_LIMIT:
                        self.blob_memo.clear()
                    self.blob_memo[blob] = target
        with self.result._lock:
            self.result.blobs_read += len(missing)
            self.result.blobs_sent += sent
            self.result.bytes_sent += sent_bytes
            self.result.blobs_present += present + already
        return tuple(mapped[blob] for blob in node.content)


def _with(node: Node, **changes: Any) -> Node:
    from dataclasses import replace

    return replace(node, **changes)


# --- verification -------------------------------------------------------------------------------
def _verify_packs(dst: Repository, packs: Iterable[str], workers: int) -> int:
    """Read back each pack and check every blob in it under the destination's keys."""

    def verify(pack_hex: str) -> None:
        try:
            dst.verify_pack(pack_hex)
        except IntegrityError as exc:
            raise IntegrityError(f"copied {exc.message}") from None

    chosen = list(packs)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(verify, chosen))
    return len(chosen)


def _verify_index_landed(dst: Repository, index_files: Iterable[str], what: str) -> None:
    """The index files the session wrote must be in storage before a snapshot refers to them."""
    for index_id in index_files:
        try:
            dst.backend.stat(layout.index_name(index_id))
        except StorageNotFound:
            raise IntegrityError(f"copy of {what}: index file {index_id[:8]} is missing after it was written") from None


# --- snapshots ---------------------------------------------------------------------------------
def _select(src: Repository, refs: Sequence[str], selection: SnapshotFilter | None) -> list[Snapshot]:
    if refs:
        chosen = {s.id: s for s in (src.resolve_snapshot(ref) for ref in refs)}
        return sorted(chosen.values(), key=lambda s: (s.time, s.id))
    return (selection or SnapshotFilter()).apply(src.snapshots())


def _parent_for(
    snapshot: Snapshot, pairs: dict[tuple[str, str], tuple[Snapshot, Snapshot]]
) -> tuple[Snapshot, Snapshot] | None:
    """The latest earlier copy of the same source and host (source snapshot, its copy)."""
    best: tuple[Snapshot, Snapshot] | None = None
    for src_snapshot, dst_snapshot in pairs.values():
        if (src_snapshot.source, src_snapshot.hostname, src_snapshot.kind) != (
            snapshot.source,
            snapshot.hostname,
            snapshot.kind,
        ):
            continue
        if src_snapshot.time > snapshot.time or src_snapshot.id == snapshot.id:
            continue
        if best is None or src_snapshot.time > best[0].time:
            best = (src_snapshot, dst_snapshot)
    return best


def copy_snapshots(
    src: Repository,
    dst: Repository,
    *,
    refs: Sequence[str] = (),
    selection: SnapshotFilter | None = None,
    wal: bool = True,
    verify: bool = True,
    workers: int = 4,
    lock_wait: float = 0.0,
    source_lock_wait: float | None = None,
    events: Events | None = None,
) -> CopyResult:
    """Copy the chosen snapshots (``refs``, else every one ``selection`` matches) and the WAL.

    ``lock_wait`` is how long to wait for the destination's lock, ``source_lock_wait`` for
    the source's (by default the same)."""
    events = (events or Events()).for_operation("copy")
    if src.header.repository_id == dst.header.repository_id:
        raise UsageError("the source and destination are the same repository", hint="give two different repositories")
    result = CopyResult(same_keys=share_keys(src, dst))
    with ExitStack() as stack:
        source_wait = lock_wait if source_lock_wait is None else source_lock_wait
        stack.enter_context(src.lock(exclusive=False, operation="copy (read)", wait=source_wait))
        stack.enter_context(dst.lock(exclusive=False, operation="copy", wait=lock_wait))
        chosen = _select(src, refs, selection)
        source_by_origin = {origin_of(src, s): s for s in src.snapshots()}
        pairs: dict[tuple[str, str], tuple[Snapshot, Snapshot]] = {}
        present: set[tuple[str, str]] = set()
        copied_ids: dict[str, str] = {}  # source snapshot id → destination snapshot id
        for existing in dst.snapshots():
            origin = origin_of(dst, existing)
            present.add(origin)
            if origin in source_by_origin:
                pairs[origin] = (source_by_origin[origin], existing)
                copied_ids[source_by_origin[origin].id] = existing.id
        todo = []
        for snapshot in chosen:
            if origin_of(src, snapshot) in present:
                result.already_present.append(snapshot.id)
            else:
                todo.append(snapshot)
        events.step(f"{len(todo)} snapshots to copy, {len(result.already_present)} already at the destination")
        for number, snapshot in enumerate(todo, 1):
            events.check()  # between snapshots: each one copied so far is committed
            events.step(f"copying snapshot {snapshot.short_id} ({number}/{len(todo)})")
            copy = _copy_one(
                src, dst, snapshot, _parent_for(snapshot, pairs), copied_ids, result, verify, workers, events
            )
            pairs[origin_of(src, snapshot)] = (snapshot, copy)
            copied_ids[snapshot.id] = copy.id
            result.copied.append(
                CopiedSnapshot(snapshot.id, copy.id, snapshot.time.isoformat(), snapshot.source, snapshot.hostname)
            )
        if wal:
            copy_wal(src, dst, result, verify=verify, workers=workers, events=events)
        whole = not refs and selection is None  # every record, else those of the sources copied
        copy_records(src, dst, result, sources=None if whole else {s.source for s in chosen})
    events.result(result.to_json())
    return result


def _copy_one(
    src: Repository,
    dst: Repository,
    snapshot: Snapshot,
    parent: tuple[Snapshot, Snapshot] | None,
    copied_ids: dict[str, str],
    result: CopyResult,
    verify: bool,
    workers: int,
    events: Events,
) -> Snapshot:
    packs: list[str] = []
    with WriteSession(dst, workers=workers, on_pack=lambda pack, _size: packs.append(pack)) as session:
        copier = _TreeCopier(src, dst, session, result, workers=workers, events=events)
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="lifeboat-copy") as pool:
            tree = copier.copy_tree(snapshot.tree, (parent[0].tree, parent[1].tree) if parent else None, pool)
        stats = session.commit()
    result.packs_written += stats.packs
    result.bytes_stored += stats.bytes_stored
    if verify:
        result.packs_verified += _verify_packs(dst, packs, workers)
        _verify_index_landed(dst, stats.index_files, f"snapshot {snapshot.short_id}")
    origin_repo, origin_id = origin_of(src, snapshot)
    copy = Snapshot(
        time=snapshot.time,
        source=snapshot.source,
        kind=snapshot.kind,
        tree=tree,
        hostname=snapshot.hostname,
        username=snapshot.username,
        paths=snapshot.paths,
        tags=snapshot.tags,
        parent=copied_ids.get(snapshot.parent) if snapshot.parent else None,
        program_version=snapshot.program_version,
        summary=snapshot.summary,
        extra={**snapshot.extra, ORIGIN: {"repository": origin_repo, "snapshot": origin_id}},
    )
    return dst.save_snapshot(copy)


# --- records ---------------------------------------------------------------------------------------
def copy_records(src: Repository, dst: Repository, result: CopyResult, *, sources: set[str] | None = None) -> None:
    """Copy every record (of ``sources``, when given) whose content the destination lacks,
    sealed under its keys. A record of the source that cannot be read is named in the result,
    not copied."""
    from lifeboat.operations.records import list_records

    present = {_fingerprint(r.encode()) for r in list_records(dst).records}
    listing = list_records(src)
    result.records_unreadable = sorted(listing.unreadable)
    for record in reversed(listing.records):  # oldest first
        if sources is not None and record.source not in sources:
            continue
        if _fingerprint(record.encode()) in present:
            result.records_present += 1
            continue
        dst.save_record(record)
        result.records_copied += 1


def _fingerprint(payload: bytes) -> str:
    return blake3.blake3(payload).hexdigest()


# --- archived WAL --------------------------------------------------------------------------------
def copy_wal(
    src: Repository,
    dst: Repository,
    result: CopyResult,
    *,
    verify: bool = True,
    workers: int = 4,
    events: Events | None = None,
) -> None:
    """Copy every archived WAL file the destination lacks: fetched and verified with the
    source's keys, archived at the destination as ``wal-push`` archives (put-if-absent, never
    overwriting different content) and, with ``verify``, read back."""
    events = events or Events(operation="copy")
    source_files = [(system_id, archived.name) for system_id, archived in archived_files(src)]
    existing = {(system_id, archived.name) for system_id, archived in archived_files(dst)}
    todo = [item for item in source_files if item not in existing]
    result.wal_present += len(source_files) - len(todo)
    if not todo:
        return
    events.step(f"copying {len(todo)} archived WAL files")
    archives = {system_id: (WalArchive(src, system_id), WalArchive(dst, system_id)) for system_id, _ in todo}

    def copy_one(item: tuple[str, str]) -> int:
        events.check()  # between WAL files: each one archived so far stays
        system_id, name = item
        source, destination = archives[system_id]
        try:
            data = source.fetch(name)
        except WalDamaged as exc:
            raise IntegrityError(
                f"source {exc.message}",
                hint="the source's archived WAL file is damaged: 'lifeboat check --read-data' on the source shows "
                "every damaged WAL file; a replica that holds a good copy can be copied back with 'lifeboat copy'",
            ) from None
        try:
            outcome = destination.push(name, data)
        except WalConflict as exc:
            raise WalConflict(
                f"destination: {exc.message}",
                hint="nothing was overwritten: the two repositories hold different WAL under one name (check both "
                "clusters), or the destination's copy is damaged ('lifeboat check --read-data' there)",
            ) from None
        if outcome is PushOutcome.ALREADY_ARCHIVED:
            return 0
        if verify and destination.fetch(name) != data:
            raise IntegrityError(f"{destination.object_name(name)} does not read back as written at the destination")
        return len(data)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for size in pool.map(copy_one, todo):
            if size:
                result.wal_copied += 1
                result.wal_bytes += size
            else:
                result.wal_present += 1
