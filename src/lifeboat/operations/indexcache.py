"""A local copy of a repository's blob index, so ``stats`` does not fetch and decrypt every
index file (one per backup: ten thousand of them) on every run.

The copy (``metadata/<repository id>.index`` in the state directory) holds the compacted
arrays of :class:`~lifeboat.repository.index.BlobIndex` — the union of the index files it
was built from, superseded ones left out — and the ids of those files.

How it stays true: an index file's id is the hash of its content, so the union of a set of
ids is the same forever. Every run lists ``index/`` (one LIST); the copy is used only for
the ids listed now. Ids listed that the copy lacks (a backup since) are fetched and added,
unless one of them supersedes a file the copy holds (``repair index``, ``prune``, or
another host rewrote the index): then, as when an id the copy holds is no longer listed,
the index is built again from every file. A file that cannot be read back whole, is of
another version or is not sealed with this repository's key (the keyed hash of
:func:`lifeboat.operations.metacache.cache_key`) is discarded and rebuilt. It is written
in this host's byte order: a cache, never copied to another host or into a repository.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lifeboat.operations.metacache import cache_key, open_sealed, seal_body
from lifeboat.operations.statefile import write_state_bytes
from lifeboat.repository.index import BlobIndex
from lifeboat.repository.repo import Repository

INDEX_CACHE_VERSION = 1


class CachedIndex:
    """A repository's ``index_catalog``: its blob index from the copy in ``state_directory``,
    checked against the listing of index files and brought up to date (then written back)."""

    def __init__(self, state_directory: str | os.PathLike[str]) -> None:
        self._state_directory = Path(state_directory)
        self.fetched = 0  # index files the last call fetched from storage
        self.rebuilt = False  # whether the last call built the index from every file

    def _path(self, repo: Repository) -> Path:
        return self._state_directory / "metadata" / f"{repo.header.repository_id}.index"

    def _load(self, repo: Repository, key: bytes) -> tuple[list[str], BlobIndex] | None:
        try:
            body = open_sealed(key, self._path(repo).read_bytes())
        except (OSError, ValueError):
            return None
        head, _, dump = body.partition(b"\n")
        try:
            doc = json.loads(head)
            if not isinstance(doc, dict) or doc.get("version") != INDEX_CACHE_VERSION:
                return None
            ids = doc["ids"]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                return None
            return ids, BlobIndex.restore(dump)
        except (ValueError, KeyError):
            return None

    def _save(self, repo: Repository, key: bytes, ids: list[str], index: BlobIndex) -> None:
        head = json.dumps({"version": INDEX_CACHE_VERSION, "ids": ids}, separators=(",", ":")).encode("ascii")
        body = head + b"\n" + index.dump()
        write_state_bytes(self._path(repo), seal_body(key, body))

    def index_of(self, repo: Repository, index_ids: list[str]) -> BlobIndex:
        self.fetched, self.rebuilt = 0, False
        key = cache_key(repo)
        cached = self._load(repo, key)
        if cached is not None:
            ids, index = cached
            if ids == index_ids:
                return index
            known = set(ids)
            new = [i for i in index_ids if i not in known]
            if known.issubset(index_ids):
                files = dict(repo.load_encoded_index_files(new))
                self.fetched = len(files)
                superseded = {s.hex() for f in files.values() for s in f.supersedes}
                if not superseded & known:  # nothing the copy holds is superseded: add the new files
                    index.bulk_load(f for i, f in files.items() if i not in superseded)
                    self._save(repo, key, index_ids, index)
                    return index
        self.rebuilt = True
        self.fetched = len(index_ids)
        index = repo.build_index(index_ids)
        self._save(repo, key, index_ids, index)
        return index


__all__ = ["INDEX_CACHE_VERSION", "CachedIndex"]
