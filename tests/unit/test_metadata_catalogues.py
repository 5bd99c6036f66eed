"""The local catalogues the metadata commands read through — the WAL listing (``pg info``,
``forget``) and the blob index (``stats``) — see what changed in the repository behind their
back: WAL archived or removed, index files added, or consolidated by another host."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.core.basebackup import BaseBackup
from lifeboat.core.ids import BlobType
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.wal import Lsn, WalSegment
from lifeboat.operations import walcatalog
from lifeboat.operations.indexcache import CachedIndex
from lifeboat.operations.maintenance import stats
from lifeboat.operations.metacache import CachedSnapshots
from lifeboat.operations.pg_info import pg_info
from lifeboat.operations.walcatalog import WalCatalogue
from lifeboat.repository.index import BlobIndex, IndexedPack, IndexFile
from lifeboat.repository.pack import PackEntry
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive
from lifeboat.repository.wallisting import WalListing
from lifeboat.storage.base import list_names, lists_names_cheaply
from lifeboat.storage.faulty import FaultPlan, FaultyBackend
from tests.conftest import PASSPHRASE

SYSTEM = "7301234567890123456"
SEG = 16 * 1024 * 1024
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _push(repo: Repository, numbers: range | list[int], timeline: int = 1) -> None:
    archive = WalArchive(repo, SYSTEM)
    for n in numbers:
        archive.push(WalSegment(timeline, n).name, b"wal %d" % n)


def _backup(repo: Repository, number: int, when: datetime) -> None:
    start = Lsn(number * SEG + 40)
    record = BaseBackup(
        method="local",
        system_id=SYSTEM,
        version="15",
        version_num=150000,
        timeline=1,
        start_lsn=start,
        stop_lsn=Lsn(start + 4096),
        start_time=when,
        stop_time=when + timedelta(seconds=1),
        label="t",
        data_directory="/d",
    )
    repo.save_snapshot(
        Snapshot(time=when, source="db", kind="postgres", tree=bytes(32), extra={"postgres": record.to_json()})
    )


def _as_stored(listing: WalListing) -> list[tuple[str, int, float]]:
    return list(zip(listing.paths, listing.sizes, listing.mtimes, strict=True))


def _catalogued(repo: Repository, state: Path) -> tuple[Repository, WalCatalogue]:
    """The same repository opened again (another process) with the WAL catalogue in ``state``."""
    other = Repository.open(repo.backend, PASSPHRASE)
    catalogue = WalCatalogue(state)
    other.wal_catalog = catalogue
    return other, catalogue


# --- the WAL catalogue ------------------------------------------------------------------------------------------
def test_wal_catalogue_sees_wal_archived_and_removed_behind_its_back(local_repo: Repository, tmp_path: Path) -> None:
    _push(local_repo, range(10))
    repo, catalogue = _catalogued(local_repo, tmp_path / "state")
    archive = WalArchive(repo, SYSTEM)
    assert len(archive.listing()) == 10 and catalogue.listed_whole  # first run: one whole listing
    assert _as_stored(archive.listing()) == _as_stored(archive.list_storage())
    assert not catalogue.listed_whole and catalogue.stat_calls == 0  # unchanged: names only
    _push(local_repo, [10, 11])  # archived by PostgreSQL since
    local_repo.backend.delete(WalArchive(local_repo, SYSTEM).object_name(WalSegment(1, 3).name))  # removed by hand
    listing = archive.listing()
    assert (catalogue.stat_calls, catalogue.listed_whole) == (2, False)
    assert WalSegment(1, 3).name not in listing.names and WalSegment(1, 11).name in listing.names
    assert _as_stored(listing) == _as_stored(archive.list_storage())


def _age_directories(repo: Repository, seconds: float) -> tuple[Path, int]:
    """Set the times of ``wal/<system>/`` and its timeline directory ``seconds`` back (as if the
    last WAL arrived then); the timeline directory and its new time in ns."""
    root = Path(repo.backend.location) / "wal" / SYSTEM
    stamp = time.time_ns() - int(seconds * 1e9)
    for directory in (root, root / "00000001"):
        os.utime(directory, ns=(stamp, stamp))
    return root / "00000001", stamp


def test_wal_catalogue_trusts_unchanged_directory_times_and_sees_a_change(
    local_repo: Repository, tmp_path: Path
) -> None:
    _push(local_repo, range(5))
    _age_directories(local_repo, 60)
    repo, catalogue = _catalogued(local_repo, tmp_path / "state")
    archive = WalArchive(repo, SYSTEM)
    archive.listing()
    assert catalogue.listed_whole
    listing = archive.listing()
    assert catalogue.stamped and not catalogue.listed_whole  # not even the names were listed
    assert _as_stored(listing) == _as_stored(archive.list_storage())

    _push(local_repo, [5])  # the timeline directory's time moves
    listing = archive.listing()
    assert not catalogue.stamped and catalogue.stat_calls == 1
    assert _as_stored(listing) == _as_stored(archive.list_storage())
    local_repo.backend.delete(WalArchive(local_repo, SYSTEM).object_name(WalSegment(1, 2).name))
    assert WalSegment(1, 2).name not in archive.listing().names and not catalogue.stamped


def test_wal_catalogue_does_not_trust_a_directory_time_as_recent_as_its_reading(
    local_repo: Repository, tmp_path: Path
) -> None:
    """A name added in the same tick of the file system's clock as the time the catalogue read
    leaves the directory's time as it was: a time that recent is never trusted."""
    _push(local_repo, range(3))
    timeline, stamp = _age_directories(local_repo, 0.5)
    repo, catalogue = _catalogued(local_repo, tmp_path / "state")
    archive = WalArchive(repo, SYSTEM)
    archive.listing()
    _push(local_repo, [3])
    os.utime(timeline, ns=(stamp, stamp))  # the same tick: the directory's time did not move
    listing = archive.listing()
    assert not catalogue.stamped and WalSegment(1, 3).name in listing.names


def test_wal_catalogue_lists_whole_when_much_is_new(
    local_repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walcatalog, "STAT_LIMIT", 2)
    _push(local_repo, range(3))
    repo, catalogue = _catalogued(local_repo, tmp_path)
    WalArchive(repo, SYSTEM).listing()
    _push(local_repo, range(3, 8))
    listing = WalArchive(repo, SYSTEM).listing()
    assert catalogue.listed_whole and catalogue.stat_calls == 0 and len(listing) == 8


def test_a_wal_catalogue_not_sealed_by_the_repository_is_not_believed(local_repo: Repository, tmp_path: Path) -> None:
    _push(local_repo, range(4))
    repo, catalogue = _catalogued(local_repo, tmp_path)
    WalArchive(repo, SYSTEM).listing()
    path = tmp_path / "metadata" / f"{repo.header.repository_id}.wal"
    assert path.stat().st_mode & 0o777 == 0o600
    seal, _, body = path.read_bytes().partition(b"\n")
    path.write_bytes(seal + b"\n" + body.replace(b"00000003", b"00000009"))  # an edited listing
    assert _as_stored(WalArchive(repo, SYSTEM).listing()) == _as_stored(WalArchive(repo, SYSTEM).list_storage())
    path.write_bytes(b"not a catalogue")
    assert len(WalArchive(repo, SYSTEM).listing()) == 4 and catalogue.listed_whole


def test_pg_info_through_the_catalogue_sees_a_gap_made_behind_its_back(local_repo: Repository, tmp_path: Path) -> None:
    _backup(local_repo, 2, NOW - timedelta(hours=2))
    _push(local_repo, range(12))
    repo, _catalogue = _catalogued(local_repo, tmp_path)
    repo.snapshot_catalog = CachedSnapshots(tmp_path)
    (before,) = pg_info(repo)
    assert before.status == "ok" and before.wal_files == 12
    local_repo.backend.delete(WalArchive(local_repo, SYSTEM).object_name(WalSegment(1, 6).name))
    (after,) = pg_info(repo)
    (fresh,) = pg_info(local_repo)  # no catalogue: everything from the storage
    assert after.to_json() == fresh.to_json()
    assert after.wal_files == 11 and after.timelines[0].gaps == [WalSegment(1, 6).name]
    assert after.window is not None and after.window.blocked_by == WalSegment(1, 6).name


def test_names_are_listed_through_a_wrapper_that_must_see_the_listing(local_repo: Repository) -> None:
    """A fault-injecting wrapper does not pass listings through: the name listing goes through it."""
    _push(local_repo, range(2))
    plan = FaultPlan(rate=1.0, kinds=("io",), operations=("list",), objects=("wal/",))
    faulty = FaultyBackend(local_repo.backend, plan)
    assert lists_names_cheaply(local_repo.backend) and not lists_names_cheaply(faulty)
    with pytest.raises(Exception, match="Input/output error"):
        list(list_names(faulty, "wal/"))


# --- snapshots of one kind -----------------------------------------------------------------------------------------
def test_snapshots_of_one_kind_through_the_cache(local_repo: Repository, tmp_path: Path) -> None:
    _backup(local_repo, 2, NOW - timedelta(hours=1))
    local_repo.save_snapshot(Snapshot(time=NOW, source="web", kind="files", tree=bytes(32)))
    catalog = CachedSnapshots(tmp_path)
    local_repo.snapshot_catalog = catalog
    assert [s.kind for s in local_repo.snapshots(kind="postgres")] == ["postgres"]  # fetched: filtered
    assert [s.kind for s in local_repo.snapshots(kind="postgres")] == ["postgres"]  # cached: filtered
    assert catalog.stats.snapshots_cached == 2 and len(local_repo.snapshots()) == 2


# --- the blob index copy -------------------------------------------------------------------------------------------
def _index_file(repo: Repository, blobs: int, supersedes: list[str] | None = None) -> tuple[str, IndexFile]:
    entries = [PackEntry(BlobType.DATA, os.urandom(32), 100 * e, 100, 200) for e in range(blobs)]
    found = IndexFile([IndexedPack(os.urandom(32), os.urandom(16), 100 * blobs, entries)])
    found.supersedes = [bytes.fromhex(s) for s in supersedes or []]
    return repo.save_index_file(found), found


def _contents(index: BlobIndex) -> set[tuple[bytes, bytes, int]]:
    return {(blob_id, loc.pack_id, loc.offset) for blob_id, loc in index.items()}


def test_blob_index_dump_round_trips_and_refuses_damage(memory_repo: Repository) -> None:
    _index_file(memory_repo, 5)
    _index_file(memory_repo, 3)
    index = memory_repo.index()
    again = BlobIndex.restore(index.dump())
    assert _contents(again) == _contents(index) and again.pack_ids == index.pack_ids
    some = next(iter(_contents(index)))[0]
    assert again.lookup(some) == index.lookup(some)
    with pytest.raises(ValueError):
        BlobIndex.restore(index.dump()[:-1])


def test_index_copy_follows_index_files_added_and_consolidated_by_another_host(
    local_repo: Repository, tmp_path: Path
) -> None:
    first, _ = _index_file(local_repo, 4)
    second, _ = _index_file(local_repo, 4)
    copy = CachedIndex(tmp_path)

    def opened() -> Repository:
        repo = Repository.open(local_repo.backend, PASSPHRASE)
        repo.index_catalog = copy
        return repo

    def truth() -> set[tuple[bytes, bytes, int]]:
        return _contents(Repository.open(local_repo.backend, PASSPHRASE).index())

    assert _contents(opened().index()) == truth() and copy.rebuilt
    assert _contents(opened().index()) == truth() and (copy.fetched, copy.rebuilt) == (0, False)
    _index_file(local_repo, 2)  # a backup since
    assert _contents(opened().index()) == truth() and (copy.fetched, copy.rebuilt) == (1, False)
    # Another host consolidates: one file supersedes the first two (their packs, fewer blobs), then removes them.
    old = {i: local_repo.load_index_file(i) for i in (first, second)}
    kept = IndexFile([p for f in old.values() for p in f.packs][:1], [bytes.fromhex(i) for i in old])
    local_repo.save_index_file(kept)
    assert _contents(opened().index()) == truth() and copy.rebuilt  # superseded files still listed
    for index_id in old:
        local_repo.backend.delete(f"index/{index_id}")
    assert _contents(opened().index()) == truth() and copy.rebuilt  # files the copy holds are gone
    assert len(truth()) == 4 + 2


def test_stats_through_the_index_copy_equal_stats_from_storage(local_repo: Repository, tmp_path: Path) -> None:
    for _ in range(3):
        _index_file(local_repo, 3)
    local_repo.save_snapshot(Snapshot(time=NOW, source="web", kind="files", tree=bytes(32), summary={"files_new": 2}))
    cached = Repository.open(local_repo.backend, PASSPHRASE)
    cached.index_catalog = CachedIndex(tmp_path)
    cached.snapshot_catalog = CachedSnapshots(tmp_path)
    for _ in range(2):  # cold, then warm
        assert stats(cached, use_lock=False).to_json() == stats(local_repo, use_lock=False).to_json()
        cached.forget_index()


@pytest.mark.parametrize("prefix", ["", "wal/", "wal/7", "index/", "snapshots/", "nothing/", f"wal/{SYSTEM}/"])
def test_a_local_name_listing_gives_the_names_the_listing_gives(local_repo: Repository, prefix: str) -> None:
    from lifeboat.storage.base import TEMP_PREFIX
    from lifeboat.storage.local import LocalBackend

    _push(local_repo, range(3))
    _push(local_repo, range(2), timeline=2)
    _index_file(local_repo, 1)
    local_repo.save_snapshot(Snapshot(time=NOW, source="web", kind="files", tree=bytes(32)))
    backend = local_repo.backend
    assert isinstance(backend, LocalBackend)
    (Path(backend.location) / "wal" / SYSTEM / "00000001" / f"{TEMP_PREFIX}half-written").write_bytes(b"x")
    assert list(backend.list_names(prefix)) == [info.name for info in backend.list(prefix)]
