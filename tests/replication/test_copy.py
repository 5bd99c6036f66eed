"""``copy``: snapshots and archived WAL between repositories on different backends and keys —
only missing data sent, idempotent, verified, and restorable byte for byte."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifeboat.core.snapshot import SnapshotFilter
from lifeboat.errors import IntegrityError, UsageError
from lifeboat.operations.backup import BackupRequest, backup_files
from lifeboat.operations.copy import ORIGIN, copy_snapshots
from lifeboat.operations.maintenance import check
from lifeboat.operations.records import list_records, new_record
from lifeboat.operations.restore import RestoreOptions, restore_snapshot
from lifeboat.repository import layout
from lifeboat.repository.check import DataSubset
from lifeboat.repository.header import RepositoryHeader
from lifeboat.repository.pack import pack_hash
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive
from lifeboat.storage.base import Backend, ObjectInfo
from lifeboat.storage.local import LocalBackend
from lifeboat.storage.memory import MemoryBackend
from tests.conftest import FAST_KDF, PASSPHRASE
from tests.servers.fixtures import Server
from tests.storage.remote import fresh_url, provider

OTHER_PASSPHRASE = b"a different passphrase for the offsite copy"
WAL_SEGMENT = "000000010000000000000001"


def make_tree(root: Path, *, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(30):
        folder = root / rng.choice(["etc", "var/lib", "var/log", "."])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file-{i}").write_bytes(rng.randbytes(rng.choice([0, 100, 20_000, 900_000])))
    (root / "big.bin").write_bytes(rng.randbytes(2 * 1024 * 1024))


def contents(root: Path) -> dict[str, str]:
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def backup(repo: Repository, root: Path) -> str:
    return backup_files(repo, BackupRequest(paths=(str(root),), workers=2)).snapshot.id


def restored(repo: Repository, snapshot_id: str, target: Path, source: Path) -> dict[str, str]:
    restore_snapshot(repo, snapshot_id, RestoreOptions(target=str(target)))
    return contents(target / source.relative_to("/"))


@pytest.fixture
def source_repo(tmp_path: Path) -> Repository:
    return Repository.init(LocalBackend(tmp_path / "source-repo"), PASSPHRASE, kdf=FAST_KDF)


@pytest.fixture(params=["moto", "azurite", "sshd"])
def offsite(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repository]:
    server: Server = request.getfixturevalue(f"{request.param}_server")
    backend = provider(fresh_url(request.param, server, monkeypatch))
    yield Repository.init(backend, OTHER_PASSPHRASE, kdf=FAST_KDF)
    backend.close()


def test_copy_to_another_backend_with_other_keys_restores_identically(
    source_repo: Repository, offsite: Repository, tmp_path: Path
) -> None:
    tree = tmp_path / "data"
    make_tree(tree, seed=1)
    first = backup(source_repo, tree)
    (tree / "etc" / "changed.conf").write_bytes(b"a new file\n" * 1000)
    second = backup(source_repo, tree)

    result = copy_snapshots(source_repo, offsite, refs=[], wal=False)
    assert not result.same_keys
    assert [c.source_id for c in result.copied] == [first, second]
    assert result.packs_verified == result.packs_written >= 1

    dst = Repository.open(offsite.backend, OTHER_PASSPHRASE)
    copies = dst.snapshots()
    assert [s.extra[ORIGIN]["snapshot"] for s in copies] == [first, second]
    assert copies[1].parent == copies[0].id
    assert copies[1].tree != source_repo.load_snapshot(second).tree  # rewritten under the other key
    assert restored(dst, copies[1].id, tmp_path / "out", tree) == contents(tree)
    verdict = check(dst, read_data=DataSubset())
    assert verdict.ok, verdict.errors


def test_copying_again_sends_nothing(source_repo: Repository, tmp_path: Path) -> None:
    tree = tmp_path / "data"
    make_tree(tree, seed=2)
    backup(source_repo, tree)
    dst = Repository.init(MemoryBackend(), OTHER_PASSPHRASE, kdf=FAST_KDF)
    copy_snapshots(source_repo, dst)
    objects_before = sorted(i.name for i in dst.backend.list("") if not i.name.startswith(layout.LOCKS))
    again = copy_snapshots(source_repo, dst)
    assert again.copied == []
    assert len(again.already_present) == 1
    assert again.blobs_sent == again.blobs_read == 0
    assert sorted(i.name for i in dst.backend.list("") if not i.name.startswith(layout.LOCKS)) == objects_before


def test_an_incremental_copy_reads_and_sends_only_what_changed(source_repo: Repository, tmp_path: Path) -> None:
    tree = tmp_path / "data"
    make_tree(tree, seed=3)
    backup(source_repo, tree)
    dst = Repository.init(MemoryBackend(), OTHER_PASSPHRASE, kdf=FAST_KDF)
    full = copy_snapshots(source_repo, dst)
    (tree / "var" / "log" / "new.log").write_bytes(random.Random(4).randbytes(300_000))
    backup(source_repo, tree)
    incremental = copy_snapshots(source_repo, dst)
    assert len(incremental.copied) == 1
    assert full.blobs_read > 10
    assert 1 <= incremental.blobs_read <= 2  # the new file only, though every tree id differs
    assert incremental.blobs_sent == incremental.blobs_read


def test_with_one_key_tree_ids_carry_over(source_repo: Repository, tmp_path: Path) -> None:
    tree = tmp_path / "data"
    make_tree(tree, seed=5)
    snapshot_id = backup(source_repo, tree)
    # A second repository under the same master key (as if created from the first one's key file).
    twin = MemoryBackend()
    for info in source_repo.backend.list(layout.KEYS):
        twin.put(info.name, source_repo.backend.get(info.name))
    header = RepositoryHeader("f" * 32, "2026-01-01T00:00:00+00:00")
    twin.put(layout.HEADER, header.encode(source_repo._master.header_mac_key))
    dst = Repository.open(twin, PASSPHRASE)

    result = copy_snapshots(source_repo, dst)
    assert result.same_keys
    assert dst.snapshots()[0].tree == source_repo.load_snapshot(snapshot_id).tree
    assert restored(dst, dst.snapshots()[0].id, tmp_path / "out", tree) == contents(tree)


def test_chains_and_copies_back_do_not_duplicate(source_repo: Repository, tmp_path: Path) -> None:
    tree = tmp_path / "data"
    make_tree(tree, seed=6)
    backup(source_repo, tree)
    b = Repository.init(MemoryBackend(), OTHER_PASSPHRASE, kdf=FAST_KDF)
    c = Repository.init(MemoryBackend(), PASSPHRASE, kdf=FAST_KDF)
    copy_snapshots(source_repo, b)
    assert len(copy_snapshots(b, c).copied) == 1
    assert copy_snapshots(source_repo, c).copied == []  # c already has it, by way of b
    assert copy_snapshots(b, source_repo).copied == []  # and a copy back is not a new snapshot
    assert len(source_repo.snapshots()) == 1


def test_selected_snapshots_only(source_repo: Repository, tmp_path: Path) -> None:
    tree = tmp_path / "data"
    make_tree(tree, seed=7)
    first = backup(source_repo, tree)
    (tree / "more").write_bytes(b"more")
    backup(source_repo, tree)
    dst = Repository.init(MemoryBackend(), OTHER_PASSPHRASE, kdf=FAST_KDF)
    result = copy_snapshots(source_repo, dst, refs=[first[:8]])
    assert [c.source_id for c in result.copied] == [first]
    assert len(dst.snapshots()) == 1


def test_copying_a_repository_onto_itself_is_refused(source_repo: Repository) -> None:
    with pytest.raises(UsageError):
        copy_snapshots(source_repo, Repository.open(source_repo.backend, PASSPHRASE))


class CorruptingBackend(MemoryBackend):
    """Storage that flips a byte of every pack it stores (silent corruption on upload)."""

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        payload = bytearray(data)
        if name.startswith(layout.DATA) and len(payload) > 100:
            payload[60] ^= 0xFF
        super().put(name, bytes(payload), if_absent=if_absent)


def test_a_pack_damaged_on_upload_is_caught_and_no_snapshot_is_written(source_repo: Repository, tmp_path: Path) -> None:
    tree = tmp_path / "data"
    make_tree(tree, seed=8)
    backup(source_repo, tree)
    dst = Repository.init(CorruptingBackend(), OTHER_PASSPHRASE, kdf=FAST_KDF)
    with pytest.raises(IntegrityError, match="copied pack"):
        copy_snapshots(source_repo, dst)
    assert dst.snapshot_ids() == []


def test_verify_pack_opens_every_blob_not_only_the_name(source_repo: Repository, tmp_path: Path) -> None:
    """A pack damaged inside a blob and stored under the hash of its damaged bytes passes the
    name check; the blob check must still catch it."""
    tree = tmp_path / "data"
    make_tree(tree, seed=10)
    backup(source_repo, tree)
    pack = next(info.name for info in source_repo.backend.list(layout.DATA))
    sound = layout.pack_id_of(pack)
    assert source_repo.verify_pack(sound)  # its entries
    damaged = bytearray(source_repo.backend.get(pack))
    damaged[40] ^= 0x01  # inside the first blob (the header is 24 bytes)
    renamed = pack_hash(damaged)
    source_repo.backend.put(layout.pack_name(renamed), bytes(damaged))
    with pytest.raises(IntegrityError, match=f"pack {renamed[:8]}: blob [0-9a-f]+ at offset 24 fails authentication"):
        source_repo.verify_pack(renamed)


def test_archived_wal_is_copied_resealed_for_the_destination(
    source_repo: Repository, moto_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = random.Random(9).randbytes(16 * 1024 * 1024)
    WalArchive(source_repo, "7300000000000000001").push(WAL_SEGMENT, segment)
    WalArchive(source_repo, "7300000000000000001").push("00000002.history", b"1\t0/3000000\tno recovery target\n")
    backend: Backend = provider(fresh_url("moto", moto_server, monkeypatch))
    dst = Repository.init(backend, OTHER_PASSPHRASE, kdf=FAST_KDF)

    result = copy_snapshots(source_repo, dst)
    assert result.wal_copied == 2
    assert WalArchive(dst, "7300000000000000001").fetch(WAL_SEGMENT) == segment
    name = "wal/7300000000000000001/00000001/" + WAL_SEGMENT
    assert backend.get(name) != source_repo.backend.get(name)  # sealed under the destination's key
    again = copy_snapshots(source_repo, dst)
    assert again.wal_copied == 0
    assert again.wal_present == 2


def test_wal_that_differs_at_the_destination_is_not_overwritten(source_repo: Repository) -> None:
    WalArchive(source_repo, "42").push(WAL_SEGMENT, b"source content")
    dst = Repository.init(RacingBackend(), OTHER_PASSPHRASE, kdf=FAST_KDF)
    WalArchive(dst, "42").push(WAL_SEGMENT, b"other content")
    with pytest.raises(IntegrityError, match="different content"):
        copy_snapshots(source_repo, dst)
    assert WalArchive(dst, "42").fetch(WAL_SEGMENT) == b"other content"


class RacingBackend(MemoryBackend):
    """Hides WAL objects from listings, as if another writer stored them meanwhile."""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return (i for i in super().list(prefix) if not i.name.startswith("wal/"))


def test_a_damaged_wal_object_at_the_source_is_named_with_a_hint_that_helps(
    source_repo: Repository, tmp_path: Path
) -> None:
    WalArchive(source_repo, "42").push(WAL_SEGMENT, b"source content")
    name = "wal/42/00000001/" + WAL_SEGMENT
    stored = tmp_path / "source-repo" / name
    sealed = bytearray(stored.read_bytes())
    sealed[-1] ^= 0x01
    stored.write_bytes(bytes(sealed))
    dst = Repository.init(MemoryBackend(), OTHER_PASSPHRASE, kdf=FAST_KDF)
    with pytest.raises(IntegrityError, match=f"source archived WAL file {WAL_SEGMENT}: fails authentication") as caught:
        copy_snapshots(source_repo, dst)
    assert "check --read-data" in caught.value.hint and "repair index" not in caught.value.hint


def test_copy_reports_events_and_a_cancel_stops_it_between_snapshots(source_repo: Repository, tmp_path: Path) -> None:
    from lifeboat.core.events import CancelToken, Event, Events, ResultReady, StepAnnounced
    from lifeboat.errors import Cancelled, ExitCode

    tree = tmp_path / "data"
    make_tree(tree, seed=7)
    first = backup(source_repo, tree)
    (tree / "etc" / "second.conf").write_bytes(b"second\n" * 100)
    second = backup(source_repo, tree)
    dst = Repository.init(MemoryBackend(), OTHER_PASSPHRASE, kdf=FAST_KDF)
    token = CancelToken()
    seen: list[Event] = []

    def sink(event: Event) -> None:
        seen.append(event)
        if isinstance(event, StepAnnounced) and event.message.endswith("(2/2)"):
            token.cancel("the daemon stops")  # while the second snapshot is being copied

    with pytest.raises(Cancelled) as stopped:
        copy_snapshots(source_repo, dst, wal=False, events=Events(sink, cancel=token))
    assert stopped.value.exit_code == ExitCode.INTERRUPTED
    steps = [e.message for e in seen if isinstance(e, StepAnnounced)]
    assert steps == [
        "2 snapshots to copy, 0 already at the destination",
        f"copying snapshot {first[:8]} (1/2)",
        f"copying snapshot {second[:8]} (2/2)",
    ]
    assert not any(isinstance(e, ResultReady) for e in seen)
    # the first snapshot was committed; the second left nothing a check would object to
    reopened = Repository.open(dst.backend, OTHER_PASSPHRASE)
    assert [s.extra[ORIGIN]["snapshot"] for s in reopened.snapshots()] == [first]
    assert check(reopened).ok

    seen.clear()
    result = copy_snapshots(source_repo, reopened, wal=False, events=Events(seen.append))
    assert [c.source_id for c in result.copied] == [second] and result.already_present == [first]
    (ready,) = [e for e in seen if isinstance(e, ResultReady)]
    assert (ready.operation, ready.document) == ("copy", result.to_json())


def test_records_are_copied_resealed_once_and_only_for_the_sources_copied(
    source_repo: Repository, tmp_path: Path
) -> None:
    tree = tmp_path / "data"
    make_tree(tree, seed=8)
    backup(source_repo, tree)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    mine = source_repo.save_record(new_record("verify", str(tree), ok=True, summary={}, result={}, time=when))
    other = source_repo.save_record(new_record("drill", "elsewhere", ok=False, summary={}, result={}, time=when))
    dst = Repository.init(MemoryBackend(), OTHER_PASSPHRASE, kdf=FAST_KDF)

    selected = copy_snapshots(source_repo, dst, selection=SnapshotFilter(sources=(str(tree),)))
    assert (selected.records_copied, selected.records_present) == (1, 0)
    everything = copy_snapshots(source_repo, dst)
    assert (everything.records_copied, everything.records_present) == (1, 1)
    again = copy_snapshots(source_repo, dst)
    assert (again.records_copied, again.records_present) == (0, 2)

    copied = list_records(dst).records
    assert sorted(r.id for r in copied) != sorted([mine.id, other.id])  # sealed under the destination's keys
    assert sorted((r.kind, r.source, r.ok) for r in copied) == [
        ("drill", "elsewhere", False),
        ("verify", str(tree), True),
    ]
    assert copy_snapshots(dst, source_repo).records_copied == 0  # a copy back is not a new record
