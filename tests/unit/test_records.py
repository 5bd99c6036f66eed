"""Records of verify runs and drills: the codec refuses what it did not write, the repository
stores them encrypted under opaque names, and the local cache is never trusted blindly."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeboat.core.records import Record, newest_per_source, select
from lifeboat.errors import IntegrityError, ObjectNotFound
from lifeboat.operations.records import RecordCache, list_records, new_record, save_record
from lifeboat.repository import layout
from lifeboat.repository.crypto.aead import ObjectKind
from lifeboat.repository.repo import Repository
from lifeboat.storage.memory import MemoryBackend
from tests.conftest import FAST_KDF

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(kind: str = "verify", source: str = "db", minutes: int = 0, ok: bool = True) -> Record:
    return new_record(
        kind,
        source,
        ok=ok,
        summary={"problems": [] if ok else ["broken"]},
        result={"snapshots": [{"snapshot": "ab" * 32}]},
        time=T0 + timedelta(minutes=minutes),
        hostname="host",
    )


class CountingBackend(MemoryBackend):
    """A real in-memory backend that counts the record objects read (to prove the cache is used)."""

    def __init__(self) -> None:
        super().__init__()
        self.record_reads = 0

    def get(self, name: str) -> bytes:
        if name.startswith(layout.RECORDS):
            self.record_reads += 1
        return super().get(name)


# --- the codec -------------------------------------------------------------------------------------


def test_a_record_round_trips() -> None:
    original = record(ok=False)
    decoded = Record.decode(original.encode(), "cd" * 32)
    assert decoded == original.with_id("cd" * 32)
    assert decoded.to_json()["short_id"] == "cdcdcdcd"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        b'{"version": 2, "kind": "verify", "source": "", "time": "2026-01-01T00:00:00+00:00", "ok": true}',
        b'{"version": 1, "kind": "verify", "source": "", "ok": true}',
        b'{"version": 1, "kind": "", "source": "", "time": "2026-01-01T00:00:00+00:00", "ok": true}',
        b'{"version": 1, "kind": "verify", "source": 3, "time": "2026-01-01T00:00:00+00:00", "ok": true}',
        b'{"version": 1, "kind": "verify", "source": "", "time": "2026-01-01T00:00:00+00:00", "ok": "yes"}',
        b'{"version": 1, "kind": "verify", "source": "", "time": "2026-01-01T00:00:00", "ok": true}',
        b'{"version": 1, "kind": "verify", "source": "", "time": 5, "ok": true}',
        b'{"version": 1, "kind": "verify", "source": "", "time": "yesterday", "ok": true}',
        b'{"version": 1, "kind": "verify", "source": "", "time": "2026-01-01T00:00:00+00:00", "ok": true, '
        b'"summary": []}',
        b'{"version": 1, "kind": "verify", "source": "", "time": "2026-01-01T00:00:00+00:00", "ok": true, '
        b'"hostname": {}}',
        b"[" * 100_000,
    ],
)
def test_hostile_bytes_fail_cleanly(data: bytes) -> None:
    with pytest.raises(IntegrityError):
        Record.decode(data, "ab" * 32)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_fail_with_integrity_error(data: bytes) -> None:
    with contextlib.suppress(IntegrityError):
        Record.decode(data)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_arbitrary_json_decodes_or_fails_with_integrity_error(doc: object) -> None:
    with contextlib.suppress(IntegrityError):
        Record.decode(json.dumps(doc).encode())


def test_selection_and_newest_per_source() -> None:
    records = [
        record(minutes=1).with_id("1"),
        record(minutes=3, ok=False).with_id("3"),
        record(source="files", minutes=2).with_id("2"),
        record(kind="drill", minutes=4).with_id("4"),
    ]
    assert [r.id for r in select(records)] == ["4", "3", "2", "1"]
    assert [r.id for r in select(records, kind="verify", source="db")] == ["3", "1"]
    newest = newest_per_source(records)
    assert {key: r.id for key, r in newest.items()} == {
        ("verify", "db"): "3",
        ("verify", "files"): "2",
        ("drill", "db"): "4",
    }


# --- in the repository ---------------------------------------------------------------------------


def test_a_saved_record_is_an_encrypted_object_under_an_opaque_name(memory_repo: Repository) -> None:
    saved = memory_repo.save_record(record(source="secret-db-name"))
    names = [info.name for info in memory_repo.backend.list(layout.RECORDS)]
    assert names == [f"records/{saved.id}"]
    stored = memory_repo.backend.get(names[0])
    assert b"secret-db-name" not in stored and b"verify" not in stored
    assert memory_repo.record_ids() == [saved.id]
    assert memory_repo.load_record(saved.id) == saved
    assert memory_repo.save_record(record(source="secret-db-name")).id != saved.id  # each sealing is fresh


def test_damaged_or_swapped_records_raise_integrity_error(memory_repo: Repository) -> None:
    saved = memory_repo.save_record(record())
    name = layout.record_name(saved.id)
    sealed = bytearray(memory_repo.backend.get(name))
    sealed[-5] ^= 0x01
    memory_repo.backend.put(name, bytes(sealed))
    with pytest.raises(IntegrityError, match="does not match its name"):
        memory_repo.load_record(saved.id)
    # A snapshot object put under records/ (its own hash as name) is not a record.
    object_id, snapshot_sealed = memory_repo.seal_object(ObjectKind.SNAPSHOT, record().encode())
    memory_repo.backend.put(layout.record_name(object_id), snapshot_sealed)
    with pytest.raises(IntegrityError, match="expected a record"):
        memory_repo.load_record(object_id)
    # A well-sealed record object that holds no record.
    bogus_id, bogus = memory_repo.seal_object(ObjectKind.RECORD, b'{"version": 1}')
    memory_repo.backend.put(layout.record_name(bogus_id), bogus)
    with pytest.raises(IntegrityError, match="malformed"):
        memory_repo.load_record(bogus_id)
    with pytest.raises(ObjectNotFound):
        memory_repo.load_record("00" * 32)
    listing = list_records(memory_repo)
    assert listing.records == []
    assert set(listing.unreadable) == {saved.id, object_id, bogus_id}


# --- the cache -------------------------------------------------------------------------------------


def test_a_cached_record_is_not_fetched_again(tmp_path: Path) -> None:
    backend = CountingBackend()
    repo = Repository.init(backend, b"pass", kdf=FAST_KDF)
    cache = RecordCache(tmp_path / "state", repo.header.repository_id)
    first = repo.save_record(record(minutes=1))
    second = repo.save_record(record(minutes=2, ok=False))

    listed = list_records(repo, cache=cache)
    assert [r.id for r in listed.records] == [second.id, first.id]
    assert listed.fetched == 2 and backend.record_reads == 2
    assert cache.path.exists() and (cache.path.stat().st_mode & 0o777) == 0o600

    again = list_records(repo, cache=cache)
    assert [r.id for r in again.records] == [second.id, first.id]
    assert again.fetched == 0 and backend.record_reads == 2  # the storage was listed, nothing read

    third = save_record(repo, record(minutes=3), cache)  # saved through the cache: known at once
    assert [r.id for r in list_records(repo, cache=cache).records] == [third.id, second.id, first.id]
    assert backend.record_reads == 2


def test_a_record_removed_from_the_repository_vanishes_from_the_cached_listing(tmp_path: Path) -> None:
    repo = Repository.init(MemoryBackend(), b"pass", kdf=FAST_KDF)
    cache = RecordCache(tmp_path / "state", repo.header.repository_id)
    kept = repo.save_record(record(minutes=1))
    removed = repo.save_record(record(minutes=2))
    assert len(list_records(repo, cache=cache).records) == 2
    repo.backend.delete(layout.record_name(removed.id))
    assert [r.id for r in list_records(repo, cache=cache).records] == [kept.id]
    assert set(cache.load()) == {kept.id}  # and it is dropped from the cache


def test_a_damaged_or_foreign_cache_is_an_empty_one(tmp_path: Path) -> None:
    repo = Repository.init(MemoryBackend(), b"pass", kdf=FAST_KDF)
    cache = RecordCache(tmp_path / "state", repo.header.repository_id)
    saved = repo.save_record(record())
    cache.directory.mkdir(parents=True)
    for junk in (b"garbage", b"[]", b'{"version": 9, "records": {}}', b'{"version": 1, "records": {"x": 1}}'):
        cache.path.write_bytes(junk)
        assert [r.id for r in list_records(repo, cache=cache).records] == [saved.id]
    # A cache entry for an id the storage lists is used as it is: ids are content hashes.
    assert set(cache.load()) == {saved.id}


def test_caches_of_two_repositories_are_apart(tmp_path: Path) -> None:
    one = Repository.init(MemoryBackend(), b"pass", kdf=FAST_KDF)
    two = Repository.init(MemoryBackend(), b"pass", kdf=FAST_KDF)
    a = save_record(one, record(source="a"), RecordCache(tmp_path, one.header.repository_id))
    b = save_record(two, record(source="b"), RecordCache(tmp_path, two.header.repository_id))
    assert [r.id for r in list_records(one, cache=RecordCache(tmp_path, one.header.repository_id)).records] == [a.id]
    assert [r.id for r in list_records(two, cache=RecordCache(tmp_path, two.header.repository_id)).records] == [b.id]


def test_an_unwritable_state_directory_means_no_cache_not_a_failure(tmp_path: Path) -> None:
    repo = Repository.init(MemoryBackend(), b"pass", kdf=FAST_KDF)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = RecordCache(blocker / "state", repo.header.repository_id)
    saved = save_record(repo, record(), cache)
    assert [r.id for r in list_records(repo, cache=cache).records] == [saved.id]
