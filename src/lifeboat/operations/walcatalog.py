"""A local catalogue of the WAL archive, so ``pg info`` and ``forget`` do not list (and, on a
local disk, ``stat``) a hundred thousand WAL objects on every run.

The catalogue keeps, per repository (``metadata/<repository id>.wal`` in the state
directory) and per cluster, what the last listing of ``wal/<system id>/`` gave: the paths
of the archived files, their stored sizes and the times they reached the repository.

How it stays true: every call lists the cluster's *names* again (on a local disk, a
directory walk without a ``stat`` per file: :func:`lifeboat.storage.base.list_names`) and
compares them with the catalogue. Equal: the catalogue is the listing. Different: names no
longer listed are dropped (WAL expired, removed by hand), new names are ``stat``-ed one by
one when they are few (WAL archived since: a minute's worth) and the whole directory is
listed again with sizes and times when they are many. So a file added or removed behind
the catalogue's back is always seen; what is taken from the catalogue without asking the
storage again is only the size and time of a name it still lists — WAL objects are
written put-if-absent and never replaced with other content, so a name keeps its object.
(A file removed *and* archived again under the same name between two runs keeps its older
time and size here until the catalogue is rebuilt: delete the file to rebuild it.)

On a local disk even the names are not listed when nothing changed: a directory's
modification time changes whenever a name is added, removed or renamed in it, so the
catalogue keeps the times of ``wal/<system id>/`` and of each timeline directory in it
(:func:`lifeboat.storage.base.directory_stamps`: a ``stat`` each), read just before the
listing it describes, and takes the listing as it is when they are all unchanged. Only times
at least :data:`STAMP_GUARD` older than the moment they were read count: a file system's
clock ticks coarsely, and a name added in the same tick as the time read would not move it
(the "racy" case Git's index guards against the same way). A time too recent, or any
difference, and the names are listed as above.

Where names cost as much as a full listing (object stores list sizes and times at once),
the catalogue is not used: one listing gives everything. The file is sealed like the
snapshot cache (:func:`lifeboat.operations.metacache.cache_key`): a first line with the
keyed hash of the body, so an edited or foreign file is discarded, never believed.
"""

from __future__ import annotations

import base64
import json
import os
import time
from array import array
from pathlib import Path
from typing import Any

from lifeboat.errors import StorageNotFound
from lifeboat.operations.metacache import cache_key, open_sealed, seal_body
from lifeboat.operations.statefile import write_state_bytes
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive
from lifeboat.repository.wallisting import WalListing, archived_path
from lifeboat.storage.base import directory_stamps, list_names, lists_names_cheaply

CATALOG_VERSION = 1
# New names up to this many are stat-ed one by one; more, and the directory is listed whole.
STAT_LIMIT = 1000
# Directory times at least this much older than the moment they were read are trusted to
# have moved with any change since (docs above).
STAMP_GUARD = 2_000_000_000  # ns


def _stamped(entry: dict[str, Any], stamps: dict[str, int] | None) -> bool:
    """Whether ``stamps`` (read now) show that nothing changed since ``entry`` was listed."""
    if stamps is None or not stamps or entry.get("stamps") != stamps:
        return False
    at = entry.get("stamped_at")
    return isinstance(at, int) and max(stamps.values()) < at - STAMP_GUARD


def _pack(listing: WalListing, ignored: list[str], stamps: dict[str, int] | None, stamped_at: int) -> dict[str, Any]:
    return {
        "paths": "\n".join(listing.paths),
        "sizes": base64.b64encode(listing.sizes.tobytes()).decode("ascii"),
        "mtimes": base64.b64encode(listing.mtimes.tobytes()).decode("ascii"),
        "ignored": ignored,
        "stamps": stamps,
        "stamped_at": stamped_at,
    }


def _unpack(entry: Any) -> tuple[WalListing, list[str]]:
    """A cluster's entry; ValueError (or KeyError, TypeError) when it is not whole."""
    paths = entry["paths"].split("\n") if entry["paths"] else []
    sizes: array[int] = array("Q")
    sizes.frombytes(base64.b64decode(entry["sizes"], validate=True))
    mtimes: array[float] = array("d")
    mtimes.frombytes(base64.b64decode(entry["mtimes"], validate=True))
    ignored = entry["ignored"]
    if len(sizes) != len(paths) or len(mtimes) != len(paths) or not isinstance(ignored, list):
        raise ValueError("malformed")
    return WalListing(paths, sizes, mtimes), [str(p) for p in ignored]


class WalCatalogue:
    """A repository's ``wal_catalog``: each cluster's WAL listing through the catalogue in
    ``state_directory``, read and (when it changed) written on each call, checked against a
    listing of names each time."""

    def __init__(self, state_directory: str | os.PathLike[str]) -> None:
        self._state_directory = Path(state_directory)
        self.stat_calls = 0  # new names stat-ed by the last call
        self.listed_whole = False  # whether the last call listed the directory with sizes and times
        self.stamped = False  # whether the last call took the listing on the directories' times alone

    def _path(self, repo: Repository) -> Path:
        return self._state_directory / "metadata" / f"{repo.header.repository_id}.wal"

    def _load(self, repo: Repository, key: bytes) -> dict[str, Any]:
        """The catalogue's clusters (system id → packed entry); empty when the file is missing,
        damaged, of another version or not sealed with this repository's key."""
        try:
            doc = json.loads(open_sealed(key, self._path(repo).read_bytes()))
        except (OSError, ValueError):
            return {}
        systems = doc.get("systems") if isinstance(doc, dict) and doc.get("version") == CATALOG_VERSION else None
        return systems if isinstance(systems, dict) else {}

    def _save(self, repo: Repository, key: bytes, systems: dict[str, Any]) -> None:
        body = json.dumps({"version": CATALOG_VERSION, "systems": systems}, separators=(",", ":")).encode("utf-8")
        write_state_bytes(self._path(repo), seal_body(key, body))

    def listing(self, repo: Repository, system_id: str) -> WalListing:
        archive = WalArchive(repo, system_id)
        self.stat_calls, self.listed_whole, self.stamped = 0, False, False
        if not lists_names_cheaply(repo.backend):
            self.listed_whole = True
            return archive.list_storage()  # names cost a full listing: take sizes and times with them
        key = cache_key(repo)
        systems = self._load(repo, key)
        entry = systems.get(archive.system_id)
        cached: tuple[WalListing, list[str]] | None = None
        if isinstance(entry, dict):
            try:
                cached = _unpack(entry)
            except (ValueError, KeyError, TypeError, AttributeError):
                cached = None
        stamped_at = time.time_ns()  # before the stamps: a change after reading them moves one past it
        try:
            stamps = directory_stamps(repo.backend, archive.prefix)
        except StorageNotFound:
            stamps = None
        self.stamped = cached is not None and isinstance(entry, dict) and _stamped(entry, stamps)
        if cached is not None and self.stamped:
            return cached[0]
        ignored: list[str] = []
        if cached is None:
            self.listed_whole = True
            fresh = archive.list_storage()
        else:
            cut = len(archive.prefix)
            try:
                listed = sorted(name[cut:] for name in list_names(repo.backend, archive.prefix))
            except StorageNotFound:
                listed = []
            known, ignored_before = cached
            if listed == known.paths and not ignored_before:
                if stamps and max(stamps.values()) < stamped_at - STAMP_GUARD:  # the next call may trust them
                    systems[archive.system_id] = _pack(known, [], stamps, stamped_at)
                    self._save(repo, key, systems)
                return known
            fresh, ignored = self._update(archive, known, listed)
        systems[archive.system_id] = _pack(fresh, ignored, stamps, stamped_at)
        self._save(repo, key, systems)
        return fresh

    def _update(self, archive: WalArchive, known: WalListing, listed: list[str]) -> tuple[WalListing, list[str]]:
        """The listing from the names ``listed`` now: known names keep their size and time, new
        ones are stat-ed (or, when many, the directory is listed whole); the names that are not
        archived files (``ignored``) are kept so that the next comparison is exact."""
        where = {path: i for i, path in enumerate(known.paths)}
        rows: list[tuple[str, int, float]] = []
        new: list[str] = []
        ignored: list[str] = []
        for path in listed:
            i = where.get(path)
            if i is not None:
                rows.append((path, known.sizes[i], known.mtimes[i]))
            elif archived_path(path):
                new.append(path)
            else:
                ignored.append(path)
        if len(new) > STAT_LIMIT:
            self.listed_whole = True
            return archive.list_storage(), ignored
        for path in new:
            try:
                info = archive.repo.backend.stat(archive.prefix + path)
            except StorageNotFound:
                continue  # removed since listed
            self.stat_calls += 1
            rows.append((path, info.size, info.mtime))
        return WalListing.of(iter(rows)), ignored


__all__ = ["CATALOG_VERSION", "STAT_LIMIT", "WalCatalogue"]
