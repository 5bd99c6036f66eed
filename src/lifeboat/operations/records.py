"""Recording check results (verify, drills) in the repository, with a local cache.

The repository is the truth: a record is stored there, encrypted (``records/<id>``), so the
history survives the loss of the host. The cache is a copy on the host that ran or read the
checks (one JSON file per repository in the state directory, named by the repository's id),
so a health check answers without fetching every record. It is never trusted blindly: the
record ids are listed from the storage on every read, only ids not yet cached are fetched,
and a cached record whose id is no longer listed is dropped — a record removed from the
repository disappears from the listing too. A cached entry cannot be stale otherwise: a
record's id is the hash of its stored bytes, so its content never changes under its id.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat import __version__
from lifeboat.core.host import this_host
from lifeboat.core.records import Record, newest_per_source, select
from lifeboat.errors import IntegrityError, ObjectNotFound
from lifeboat.operations.statefile import read_state_file, write_state_file
from lifeboat.repository.repo import READ_PARALLELISM, Repository

CACHE_VERSION = 1


class RecordCache:
    """The records of one repository cached in ``directory/<repository id>.json``.

    Written whole, to a temporary file renamed into place: a reader never sees half a file,
    and two writers at once lose nothing that the next listing would not fetch again.
    """

    def __init__(self, directory: str | os.PathLike[str], repository_id: str) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f"{repository_id}.json"

    def load(self) -> dict[str, Record]:
        """The cached records by id; an unreadable or foreign cache is an empty one."""
        doc = read_state_file(self.path, CACHE_VERSION)
        if doc is None or not isinstance(doc.get("records"), dict):
            return {}
        found: dict[str, Record] = {}
        for record_id, entry in doc["records"].items():
            with contextlib.suppress(IntegrityError):
                found[record_id] = Record.from_doc(entry, record_id)
        return found

    def store(self, records: Iterable[Record]) -> None:
        """Replace the cache with ``records``; a host where it cannot be written just has no cache."""
        write_state_file(self.path, {"version": CACHE_VERSION, "records": {r.id: r.to_doc() for r in records}})


@dataclass
class RecordListing:
    """The records a listing found (newest first), and those that cannot be read."""

    records: list[Record] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # record id → what is wrong
    fetched: int = 0  # records read from the repository (not in the cache)

    def to_json(self) -> dict[str, Any]:
        return {
            "records": [r.to_json() for r in self.records],
            "unreadable": [{"record": i, "problem": p} for i, p in sorted(self.unreadable.items())],
        }


def new_record(
    kind: str,
    source: str,
    *,
    ok: bool,
    summary: dict[str, Any],
    result: dict[str, Any],
    time: datetime,
    hostname: str | None = None,
) -> Record:
    """A record of a check that finished at ``time`` on this host (or ``hostname``)."""
    return Record(
        kind=kind,
        source=source,
        time=time,
        ok=ok,
        summary=summary,
        result=result,
        hostname=this_host() if hostname is None else hostname,
        program_version=__version__,
    )


def save_record(repo: Repository, record: Record, cache: RecordCache | None = None) -> Record:
    """Store ``record`` in the repository (then in the cache); returns it with its id."""
    saved = repo.save_record(record)
    if cache is not None:
        cached = cache.load()
        cached[saved.id] = saved
        cache.store(cached.values())
    return saved


def record_cache(state_directory: str | os.PathLike[str] | None, repo: Repository) -> RecordCache | None:
    """The cache of ``repo``'s records below the state directory (None: no cache)."""
    if state_directory is None:
        return None
    return RecordCache(Path(state_directory) / "records", repo.header.repository_id)


def list_records(
    repo: Repository,
    *,
    kind: str | None = None,
    source: str | None = None,
    cache: RecordCache | None = None,
) -> RecordListing:
    """The records of ``kind`` and ``source`` (any when None), newest first.

    The ids come from the storage; records the cache holds are taken from it, the others are
    fetched (several at a time) and added to it. A damaged record is reported, not raised.
    """
    ids = repo.record_ids()
    cached = cache.load() if cache is not None else {}
    missing = [i for i in ids if i not in cached]

    def fetch(record_id: str) -> Record | str | None:
        try:
            return repo.load_record(record_id)
        except ObjectNotFound:
            return None  # removed since listed
        except IntegrityError as exc:
            return exc.message

    listing = RecordListing()
    found = {i: cached[i] for i in ids if i in cached}
    with ThreadPoolExecutor(max_workers=READ_PARALLELISM) as pool:
        for record_id, outcome in zip(missing, pool.map(fetch, missing), strict=True):
            if isinstance(outcome, Record):
                found[record_id] = outcome
                listing.fetched += 1
            elif isinstance(outcome, str):
                listing.unreadable[record_id] = outcome
    if cache is not None and (listing.fetched or len(found) != len(cached)):
        cache.store(found.values())
    listing.records = select(found.values(), kind=kind, source=source)
    return listing


def newest_records(
    repo: Repository, *, kind: str | None = None, cache: RecordCache | None = None
) -> dict[tuple[str, str], Record]:
    """The newest record of each (kind, source), of ``kind`` only when given."""
    return newest_per_source(list_records(repo, kind=kind, cache=cache).records)


__all__ = [
    "RecordCache",
    "RecordListing",
    "list_records",
    "new_record",
    "newest_records",
    "record_cache",
    "save_record",
]
