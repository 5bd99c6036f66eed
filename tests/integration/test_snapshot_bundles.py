"""Snapshot bundles: prune gathers the snapshot objects into one, a host reading the
repository for the first time reads that one instead of one object per snapshot, and a
bundle never makes a reader believe what the snapshot objects do not hold."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifeboat.core.snapshot import Snapshot
from lifeboat.errors import IntegrityError
from lifeboat.operations.backup import backup_stream
from lifeboat.operations.maintenance import check, forget_ids, prune, stats
from lifeboat.operations.metacache import CachedSnapshots
from lifeboat.repository import gc, layout
from lifeboat.repository import repo as repo_module
from lifeboat.repository.bundle import MIN_BUNDLED, SnapshotBundle
from lifeboat.repository.check import ProblemKind
from lifeboat.repository.gc import CONSOLIDATE_ABOVE
from lifeboat.repository.repo import Repository
from lifeboat.storage.memory import MemoryBackend
from tests.conftest import FAST_KDF, PASSPHRASE

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class CountingBackend(MemoryBackend):
    """A memory backend that counts the objects read, by the directory they are in."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: dict[str, int] = {}

    def get(self, name: str) -> bytes:
        kind = name.split("/", 1)[0]
        self.gets[kind] = self.gets.get(kind, 0) + 1
        return super().get(name)


def _repository(backups: int) -> tuple[Repository, CountingBackend, list[str]]:
    backend = CountingBackend()
    repo = Repository.init(backend, PASSPHRASE, kdf=FAST_KDF)
    ids = [
        backup_stream(repo, io.BytesIO(b"row %d\n" % i * 50), name=f"db{i % 3}.sql").snapshot.id for i in range(backups)
    ]
    return repo, backend, ids


def _reader(backend: CountingBackend, state: Path) -> tuple[Repository, CachedSnapshots]:
    """Another host opening the repository: its own (empty) metadata cache in ``state``."""
    other = Repository.open(backend, PASSPHRASE)
    catalog = CachedSnapshots(state)
    other.snapshot_catalog = catalog
    backend.gets.clear()
    return other, catalog


def _by_id(snapshots: list[Snapshot]) -> dict[str, str]:
    return {s.id: s.encode().decode() for s in snapshots}


def test_a_first_reading_after_prune_reads_one_bundle_not_every_snapshot(tmp_path: Path) -> None:
    repo, backend, ids = _repository(MIN_BUNDLED + 6)
    result = prune(repo, now=NOW)
    assert result.bundle is not None and result.bundle.written is not None
    assert result.bundle.snapshots == len(ids) and result.bundle.fetched == len(ids)
    assert [i.name for i in backend.list(layout.BUNDLES)] == [layout.bundle_name(result.bundle.written)]

    reader, catalog = _reader(backend, tmp_path / "state")
    found, damaged = reader.snapshots_and_damage()
    assert not damaged
    assert backend.gets.get("snapshots", 0) == 0  # not one snapshot object fetched
    assert backend.gets["bundles"] == 1
    assert catalog.stats.snapshots_bundled == len(ids)
    assert sorted(s.id for s in found) == sorted(ids)
    assert _by_id(found) == _by_id(repo.snapshots())

    again = prune(repo, now=NOW)  # the bundle holds exactly the listed snapshots: nothing to write
    assert again.bundle is not None and again.bundle.written is None and again.bundle.removed == 0


def test_a_bundle_gives_only_listed_snapshots_and_the_rest_are_fetched(tmp_path: Path) -> None:
    repo, backend, ids = _repository(MIN_BUNDLED + 4)
    prune(repo, now=NOW)
    forget_ids(repo, ids[:5])  # removed since the bundle was written: the bundle still holds them
    newer = [backup_stream(repo, io.BytesIO(b"new %d" % i), name="late.sql").snapshot.id for i in range(3)]

    reader, catalog = _reader(backend, tmp_path / "state")
    found = reader.snapshots()
    assert sorted(s.id for s in found) == sorted(ids[5:] + newer)
    assert catalog.stats.snapshots_bundled == len(ids) - 5
    assert backend.gets["snapshots"] == 3  # only the three the bundle does not hold

    result = prune(repo, now=NOW)  # a new bundle of exactly the listed snapshots; the old one removed
    assert result.bundle is not None and result.bundle.written is not None
    assert result.bundle.removed == 1 and result.bundle.fetched == 3
    (bundle_id,) = repo.bundle_ids()
    assert sorted(repo.load_bundle(bundle_id).objects) == sorted(ids[5:] + newer)


def test_fewer_missing_snapshots_than_the_threshold_are_fetched_without_reading_bundles(tmp_path: Path) -> None:
    repo, backend, ids = _repository(MIN_BUNDLED + 2)
    prune(repo, now=NOW)
    reader, _ = _reader(backend, tmp_path / "state")
    reader.snapshots()  # fills the cache from the bundle
    for i in range(3):
        backup_stream(repo, io.BytesIO(b"more %d" % i), name="more.sql")
    backend.gets.clear()
    assert len(reader.snapshots()) == len(ids) + 3
    assert backend.gets == {"snapshots": 3}


def test_overlapping_bundles_left_by_an_interrupted_prune_read_as_their_union(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repo_module, "MIN_BUNDLED", 2)
    repo, backend, ids = _repository(6)
    stored = {i: backend.get(layout.snapshot_name(i)) for i in ids}
    repo.save_bundle(SnapshotBundle({i: stored[i] for i in ids[:4]}))
    repo.save_bundle(SnapshotBundle({i: stored[i] for i in ids[2:]}))

    reader, catalog = _reader(backend, tmp_path / "state")
    assert sorted(s.id for s in reader.snapshots()) == sorted(ids)
    assert catalog.stats.snapshots_bundled == 6 and backend.gets.get("snapshots", 0) == 0

    result = prune(repo, now=NOW)
    assert result.bundle is not None and result.bundle.removed == 2 and result.bundle.fetched == 0
    assert len(repo.bundle_ids()) == 1


def test_a_bundle_copy_that_is_not_the_snapshot_is_never_believed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle whose copy of snapshot A is snapshot B's object (sealed with the right key, so
    it would decrypt): the reader checks the copy against A's name and fetches A itself;
    check names the bundle; prune replaces it with true copies."""
    monkeypatch.setattr(repo_module, "MIN_BUNDLED", 2)
    repo, backend, ids = _repository(4)
    stored = {i: backend.get(layout.snapshot_name(i)) for i in ids}
    forged = dict(stored)
    forged[ids[0]] = stored[ids[1]]
    bad = repo.save_bundle(SnapshotBundle(forged))

    reader, catalog = _reader(backend, tmp_path / "state")
    listed = reader.snapshots()
    assert catalog.stats.snapshots_bundled == 3 and backend.gets["snapshots"] == 1
    assert _by_id(listed) == _by_id(repo.snapshots())

    result = check(repo)
    problems = [p for p in result.errors if p.kind is ProblemKind.BUNDLE]
    assert [p.object for p in problems] == [f"bundle {bad[:8]}"]
    assert f"damaged copy of snapshot {ids[0][:8]}" in problems[0].message
    assert "lifeboat prune" in problems[0].message

    prune(repo, now=NOW)
    (bundle_id,) = repo.bundle_ids()
    assert bundle_id != bad
    assert repo.load_bundle(bundle_id).objects == stored
    assert check(repo).ok


def test_a_damaged_bundle_costs_requests_not_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repo_module, "MIN_BUNDLED", 2)
    repo, backend, ids = _repository(4)
    prune(repo, now=NOW)
    (bundle_id,) = repo.bundle_ids()
    name = layout.bundle_name(bundle_id)
    raw = bytearray(backend.get(name))
    raw[len(raw) // 2] ^= 0x40
    backend.replace_raw(name, bytes(raw))

    reader, catalog = _reader(backend, tmp_path / "state")
    listed = reader.snapshots()
    assert catalog.stats.snapshots_bundled == 0 and backend.gets["snapshots"] == len(ids)
    assert _by_id(listed) == _by_id(repo.snapshots())

    problems = [p for p in check(repo).errors if p.kind is ProblemKind.BUNDLE]
    assert [p.object for p in problems] == [f"bundle {bundle_id[:8]}"]
    assert "unreadable" in problems[0].message

    result = prune(repo, now=NOW)
    assert result.bundle is not None and result.bundle.written is not None and result.bundle.removed == 1
    assert check(repo).ok


def test_a_snapshot_damaged_after_it_was_bundled_is_listed_from_its_copy_and_check_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle's copy is the snapshot's object as written (its hash is the id), so the
    listing shows the snapshot; the damaged object in ``snapshots/`` is what check reports."""
    monkeypatch.setattr(repo_module, "MIN_BUNDLED", 2)
    repo, backend, ids = _repository(4)
    prune(repo, now=NOW)
    name = layout.snapshot_name(ids[2])
    backend.replace_raw(name, backend.get(name)[:-1] + b"\x00")

    reader, _ = _reader(backend, tmp_path / "state")
    found, damaged = reader.snapshots_and_damage()
    assert sorted(s.id for s in found) == sorted(ids) and not damaged
    problems = [p for p in check(repo).errors if p.kind is ProblemKind.SNAPSHOT]
    assert [p.object for p in problems] == [f"snapshot {ids[2][:8]}"]


def test_bundles_are_read_without_a_metadata_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repo_module, "MIN_BUNDLED", 2)
    repo, backend, ids = _repository(5)
    prune(repo, now=NOW)
    other = Repository.open(backend, PASSPHRASE)
    backend.gets.clear()
    assert sorted(s.id for s in other.snapshots()) == sorted(ids)
    assert backend.gets.get("snapshots", 0) == 0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x01", "truncated"),
        (b"\x02\x00\x00\x00\x00", "version 2"),
        (b"\x01\xff\xff\xff\x00", "more than it can hold"),
        (b"\x01\x01\x00\x00\x00" + bytes(32) + b"\x05\x00\x00\x00abc", "truncated"),
        (b"\x01\x01\x00\x00\x00" + bytes(32) + b"\x01\x00\x00\x00ab", "1 bytes after"),
        (b"\x01\x02\x00\x00\x00" + (bytes(32) + b"\x01\x00\x00\x00a") * 2, "twice"),
    ],
)
def test_a_malformed_bundle_is_refused(payload: bytes, message: str) -> None:
    with pytest.raises(IntegrityError, match=message):
        SnapshotBundle.decode(payload)


def test_a_bundle_round_trips() -> None:
    bundle = SnapshotBundle({"ab" * 32: b"one", "cd" * 32: b"", "01" * 32: b"three" * 100})
    assert SnapshotBundle.decode(bundle.encode()) == bundle


def test_prune_rewrites_many_small_index_files_into_one() -> None:
    repo, _backend, _ids = _repository(CONSOLIDATE_ABOVE + 3)
    before_stats = stats(repo).to_json()
    old = set(repo.index_ids())
    assert len(old) == CONSOLIDATE_ABOVE + 3

    result = prune(repo, now=NOW)
    assert result.plan.consolidate == CONSOLIDATE_ABOVE + 3
    assert result.packs_deleted == 0 and result.bytes_freed == 0
    (index_id,) = repo.index_ids()
    assert index_id not in old
    repo.forget_index()
    after_stats = stats(repo).to_json()
    assert after_stats["unique_bytes"] == before_stats["unique_bytes"]
    assert check(repo, read_data=None).ok
    assert not prune(repo, now=NOW).plan.consolidate


def test_prune_leaves_a_few_index_files_alone() -> None:
    repo, _backend, _ids = _repository(CONSOLIDATE_ABOVE)
    before = repo.index_ids()
    result = prune(repo, now=NOW)
    assert result.plan.consolidate == 0 and not result.plan.changes_anything
    assert repo.index_ids() == before


def test_a_rewritten_index_is_split_into_files_of_the_largest_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rewrite fills each index file to the cap before it starts the next (a running count)."""
    monkeypatch.setattr(gc, "MAX_ENTRIES_PER_FILE", 10)
    repo, _backend, _ids = _repository(CONSOLIDATE_ABOVE + 3)
    before = {(e.id, e.length) for _, f in repo.load_index_files(repo.index_ids()) for p in f.packs for e in p.entries}
    assert prune(repo, now=NOW).plan.consolidate == CONSOLIDATE_ABOVE + 3
    files = [f for _, f in repo.load_index_files(repo.index_ids())]
    sizes = sorted(sum(len(p.entries) for p in f.packs) for f in files)
    assert len(files) > 1 and all(size >= 10 for size in sizes[1:])  # all but the last one full
    after = {(e.id, e.length) for f in files for p in f.packs for e in p.entries}
    assert after == before
    assert check(repo).ok


def test_a_repository_without_snapshots_keeps_no_bundle() -> None:
    repo, _backend, ids = _repository(3)
    prune(repo, now=NOW)
    assert len(repo.bundle_ids()) == 1
    forget_ids(repo, ids)
    result = prune(repo, now=NOW)
    assert result.bundle is not None and result.bundle.written is None and result.bundle.removed == 1
    assert repo.bundle_ids() == []
