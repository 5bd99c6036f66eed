"""A local cache of a repository's metadata, so a health check answers in a second.

Reading 5,000 snapshot records means 5,000 fetches and decryptions; a health check runs
every minute. The cache keeps, per repository (a file named by the repository's id in the
state directory's ``metadata/``), what never changes under its name:

- snapshot records by id: a snapshot's id is the hash of its stored object, so the record
  under an id is the same forever;
- the content of archived timeline history files by cluster and name: WAL objects are
  written put-if-absent and never replaced with other content;
- per index file, the number and the bytes of the packs it lists and the index files it
  supersedes (the repository's size for the metrics): an index file's id is the hash of its
  content too.

How it stays true: the ids are listed from the storage on every run (one LIST); only ids
not in the cache are fetched and decoded; a cached id no longer listed is dropped (a
snapshot removed by ``forget`` disappears); a cache file that cannot be read as this
version's is discarded whole and rebuilt. Nothing is trusted from the cache that the
listing does not confirm, and nothing from a file this repository's key did not seal: the
file's first line is a keyed hash of the rest (a key derived from the repository's master
key: :func:`seal_body`, checked over the bytes as read, before any parsing), so an edited or
foreign cache file is discarded, never believed. Records are kept as parsed JSON documents:
one parse of the file gives all ten thousand. The file is written to a temporary name
and renamed, mode 0600, in a directory of mode 0700: it holds decrypted snapshot records
(paths, host names).

Every command that lists snapshots reads them through the cache (:class:`CachedSnapshots`,
the repository's ``snapshot_catalog``), so ``snapshots``, ``forget``, ``pg info``, ``stats``
and ``health`` answer at 10,000 snapshots without 10,000 fetches. The WAL listing and the
blob index have caches of their own beside this file (:mod:`lifeboat.operations.walcatalog`,
:mod:`lifeboat.operations.indexcache`), sealed the same way.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3

from lifeboat.core.snapshot import Snapshot, UnreadableSnapshot
from lifeboat.core.tokens import same_digest
from lifeboat.errors import IntegrityError, ObjectNotFound
from lifeboat.operations.statefile import write_state_bytes
from lifeboat.repository.repo import READ_PARALLELISM, Repository

CACHE_VERSION = 3  # 2: sealed with a keyed hash; 3: the seal over the body's bytes, records kept parsed


def cache_key(repo: Repository) -> bytes:
    """The key that seals this repository's cache file: derived from its master key, so only
    a process that opened the repository can write a file the next one believes."""
    return blake3.blake3(repo.encryption_root, derive_key_context="lifeboat 2026 metadata cache seal").digest()


def seal_body(key: bytes, body: bytes) -> bytes:
    """A sealed cache file: the keyed hash of ``body`` (hex), a newline, then ``body``."""
    return blake3.blake3(body, key=key).hexdigest().encode("ascii") + b"\n" + body


def open_sealed(key: bytes, raw: bytes) -> bytes:
    """The body of a file :func:`seal_body` wrote; ValueError when the seal does not match
    (an edited file, or one sealed with another repository's key)."""
    seal, _, body = raw.partition(b"\n")
    if not same_digest(seal, blake3.blake3(body, key=key).hexdigest().encode("ascii")):
        raise ValueError("not sealed with this repository's key")
    return body


@dataclass
class CacheStats:
    """What a run took from the storage rather than the cache."""

    snapshots_fetched: int = 0
    snapshots_cached: int = 0
    snapshots_dropped: int = 0
    snapshots_bundled: int = 0  # of those fetched, how many came from bundles (repository/bundle.py)
    history_fetched: int = 0
    index_fetched: int = 0
    discarded: bool = False  # the cache file was damaged or of another version

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshots_fetched": self.snapshots_fetched,
            "snapshots_cached": self.snapshots_cached,
            "snapshots_dropped": self.snapshots_dropped,
            "snapshots_bundled": self.snapshots_bundled,
            "history_fetched": self.history_fetched,
            "index_fetched": self.index_fetched,
            "discarded": self.discarded,
        }


@dataclass
class MetadataCache:
    """The cached metadata of one repository (``path`` None: no cache, everything is fetched)."""

    path: Path | None
    key: bytes = b""  # seals the file (cache_key)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → the record's JSON document
    history: dict[str, str] = field(default_factory=dict)  # "<system id>/<name>" → content
    index: dict[str, dict[str, Any]] = field(default_factory=dict)  # index id → {"packs", "bytes", "supersedes"}
    stats: CacheStats = field(default_factory=CacheStats)
    changed: bool = False

    @classmethod
    def load(cls, state_directory: str | os.PathLike[str] | None, repo: Repository) -> MetadataCache:
        """The cache of ``repo`` in ``state_directory`` (None: no cache); a file that is not
        this version's, not whole, or not sealed with this repository's key is discarded."""
        if state_directory is None:
            return cls(None)
        path = Path(state_directory) / "metadata" / f"{repo.header.repository_id}.json"
        cache = cls(path, cache_key(repo))
        try:
            raw = path.read_bytes()
        except OSError:
            return cache
        try:
            doc = json.loads(open_sealed(cache.key, raw))
            if not isinstance(doc, dict) or doc.get("version") != CACHE_VERSION:
                raise ValueError("another version")
            snapshots, history, index = doc["snapshots"], doc["history"], doc["index"]
            if not all(isinstance(k, str) and isinstance(v, dict) for k, v in snapshots.items()):
                raise ValueError("malformed")
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in history.items()):
                raise ValueError("malformed")
            if not isinstance(index, dict) or not all(_index_entry(v) for v in index.values()):
                raise ValueError("malformed")
        except (ValueError, KeyError, TypeError, AttributeError):
            cache.stats.discarded = True
            cache.changed = True
            return cache
        cache.snapshots, cache.history, cache.index = snapshots, history, index
        return cache

    def save(self) -> None:
        """Write the cache when it changed; a state directory that cannot be written just means no cache."""
        if self.path is None or not self.changed:
            return
        doc: dict[str, Any] = {
            "version": CACHE_VERSION,
            "snapshots": self.snapshots,
            "history": self.history,
            "index": self.index,
        }
        body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        if write_state_bytes(self.path, seal_body(self.key, body)):
            self.changed = False

    # --- snapshots -------------------------------------------------------------------------
    def snapshots_of(
        self, repo: Repository, *, kind: str | None = None
    ) -> tuple[list[Snapshot], list[UnreadableSnapshot]]:
        """Every snapshot (oldest first; with ``kind``, only those of that kind) and the ones
        that cannot be read: ids from one listing, records from the cache or fetched. A cached
        record of another kind is not even decoded (``pg info`` wants a hundred of ten thousand)."""
        ids = repo.snapshot_ids()
        listed = set(ids)
        dropped = [i for i in self.snapshots if i not in listed]
        for snapshot_id in dropped:
            del self.snapshots[snapshot_id]
        self.stats.snapshots_dropped = len(dropped)
        self.changed |= bool(dropped)
        found: list[Snapshot] = []
        unreadable: list[UnreadableSnapshot] = []
        missing: list[str] = []
        cached = 0
        for snapshot_id in ids:
            doc = self.snapshots.get(snapshot_id)
            if doc is None:
                missing.append(snapshot_id)
                continue
            cached += 1
            if kind is not None and doc.get("kind") != kind:
                continue
            try:
                found.append(Snapshot.from_doc(doc, snapshot_id))
            except IntegrityError:  # a damaged cache entry: fetch it again
                del self.snapshots[snapshot_id]
                missing.append(snapshot_id)
                cached -= 1
        self.stats.snapshots_cached = cached

        if missing:
            outcomes, self.stats.snapshots_bundled = repo.fetch_snapshots(missing)
            for outcome in outcomes:
                if isinstance(outcome, Snapshot):
                    if kind is None or outcome.kind == kind:
                        found.append(outcome)
                    self.snapshots[outcome.id] = outcome.to_doc()  # JSON-ready: saved as it is
                    self.stats.snapshots_fetched += 1
                    self.changed = True
                elif isinstance(outcome, UnreadableSnapshot):
                    unreadable.append(outcome)
        found.sort(key=lambda s: (s.time, s.id))
        return found, unreadable

    # --- timeline history files ----------------------------------------------------------------
    def history_file(self, system_id: str, name: str, fetch: Any) -> str:
        """The content of archived history file ``name`` of ``system_id`` (``fetch(name)`` → bytes
        when not cached; its errors pass through)."""
        key = f"{system_id}/{name}"
        text = self.history.get(key)
        if text is None:
            text = fetch(name).decode("utf-8", "replace")
            self.history[key] = text
            self.stats.history_fetched += 1
            self.changed = True
        return text

    def keep_history(self, system_id: str, names: set[str]) -> None:
        """Drop cached history files of ``system_id`` no longer listed."""
        prefix = f"{system_id}/"
        gone = [k for k in self.history if k.startswith(prefix) and k[len(prefix) :] not in names]
        for key in gone:
            del self.history[key]
        self.changed |= bool(gone)

    # --- index files: the repository's size ---------------------------------------------------
    def packed(self, repo: Repository) -> tuple[int, int]:
        """The number and the bytes of the packs the repository's index lists: the index file ids
        from one listing, each file's numbers from the cache or fetched. Index files another
        lists as superseded are not counted; one that cannot be read counts nothing."""
        ids = repo.index_ids()
        listed = set(ids)
        dropped = [i for i in self.index if i not in listed]
        for index_id in dropped:
            del self.index[index_id]
        self.changed |= bool(dropped)
        missing = [i for i in ids if i not in self.index]

        def fetch(index_id: str) -> dict[str, Any] | None:
            try:
                found = repo.load_index_file(index_id)
            except (ObjectNotFound, IntegrityError):
                return None
            return {
                "packs": len(found.packs),
                "bytes": sum(p.size for p in found.packs),
                "supersedes": [s.hex() for s in found.supersedes],
            }

        if missing:
            with ThreadPoolExecutor(max_workers=READ_PARALLELISM) as pool:
                for index_id, entry in zip(missing, pool.map(fetch, missing), strict=True):
                    if entry is not None:
                        self.index[index_id] = entry
                        self.stats.index_fetched += 1
                        self.changed = True
        kept = {i: self.index[i] for i in ids if i in self.index}
        superseded = {s for entry in kept.values() for s in entry["supersedes"]}
        counted = [entry for i, entry in kept.items() if i not in superseded]
        return sum(int(e["packs"]) for e in counted), sum(int(e["bytes"]) for e in counted)


class CachedSnapshots:
    """A repository's ``snapshot_catalog``: its snapshots through the cache in
    ``state_directory``, the file read and (when it changed) written on each call, so
    commands and the daemon share it and each call sees the storage's listing of that moment."""

    def __init__(self, state_directory: str | os.PathLike[str]) -> None:
        self._state_directory = state_directory
        self.stats = CacheStats()

    def snapshots_of(
        self, repo: Repository, *, kind: str | None = None
    ) -> tuple[list[Snapshot], list[UnreadableSnapshot]]:
        cache = MetadataCache.load(self._state_directory, repo)
        found = cache.snapshots_of(repo, kind=kind)
        cache.save()
        self.stats = cache.stats
        return found


def _index_entry(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("packs"), int)
        and isinstance(value.get("bytes"), int)
        and isinstance(value.get("supersedes"), list)
        and all(isinstance(s, str) for s in value["supersedes"])
    )


__all__ = ["CACHE_VERSION", "CacheStats", "CachedSnapshots", "MetadataCache", "cache_key", "open_sealed", "seal_body"]
