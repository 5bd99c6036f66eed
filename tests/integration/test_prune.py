"""Prune: what it removes, what it repacks, what the safety margin protects."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.core.ids import BlobType
from lifeboat.errors import IntegrityError
from lifeboat.operations.backup import backup_stream
from lifeboat.operations.maintenance import check, prune
from lifeboat.repository import layout
from lifeboat.repository.pack import PackWriter
from lifeboat.repository.repo import Repository
from lifeboat.storage.memory import MemoryBackend
from tests.conftest import FAST_KDF, PASSPHRASE


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clocked() -> tuple[Repository, MemoryBackend, Clock]:
    clock = Clock()
    backend = MemoryBackend(clock=lambda: clock.now.timestamp())  # noqa: PLW0108 - reads the current time
    return Repository.init(backend, PASSPHRASE, kdf=FAST_KDF, clock=clock), backend, clock


def store(repo: Repository, name: str, data: bytes) -> str:
    import io

    return backup_stream(repo, io.BytesIO(data), name=name).snapshot.id


def packs(backend: MemoryBackend) -> set[str]:
    return {info.name for info in backend.list(layout.DATA)}


def test_prune_removes_unused_packs_and_keeps_used_ones(clocked: tuple[Repository, MemoryBackend, Clock]) -> None:
    repo, backend, clock = clocked
    keep = store(repo, "keep", os.urandom(3_000_000))
    drop = store(repo, "drop", os.urandom(3_000_000))
    before = packs(backend)
    repo.delete_snapshot(drop)
    result = prune(repo, now=clock.now)
    assert result.plan.of("delete") and result.packs_deleted >= 1
    assert packs(backend) < before
    assert check(repo).ok
    assert [s.id for s in repo.snapshots()] == [keep]


def test_partly_used_packs_are_repacked(clocked: tuple[Repository, MemoryBackend, Clock]) -> None:
    repo, _, clock = clocked
    import io

    # Two streams in one session share packs: blobs of both end up in the same pack.
    a, b = os.urandom(6_000_000), os.urandom(1_500_000)  # a is long enough to hold several chunk boundaries
    first = backup_stream(repo, io.BytesIO(a + b), name="ab").snapshot.id
    second = backup_stream(repo, io.BytesIO(a), name="a").snapshot.id
    repo.delete_snapshot(first)  # b's blobs become unused; a's stay used by `second`
    result = prune(repo, now=clock.now, repack_threshold=0.10)
    assert result.plan.of("repack"), result.plan.to_json()
    assert result.packs_written >= 1
    assert check(repo).ok
    restored = b"".join(repo.load_blobs(repo.load_tree(repo.load_snapshot(second).tree).nodes[0].content))
    assert restored == a


def test_unindexed_packs_younger_than_the_margin_are_kept(clocked: tuple[Repository, MemoryBackend, Clock]) -> None:
    repo, backend, clock = clocked
    store(repo, "base", os.urandom(100_000))
    # What an interrupted backup leaves: a pack uploaded, no index file naming it.
    writer = PackWriter(repo.encryption_root)
    data = os.urandom(2_000_000)
    writer.add(BlobType.DATA, repo.blob_id(data), repo.compressor.payload(data), len(data))
    pack_id, raw = writer.finish()
    backend.put(layout.pack_name(pack_id), raw)
    orphan = {layout.pack_name(pack_id)}
    assert len(orphan) == 1
    young = prune(repo, now=clock.now, margin=timedelta(hours=1))
    assert [v.action for v in young.plan.verdicts if layout.pack_name(v.pack_id.hex()) in orphan] == ["orphan-keep"]
    assert orphan <= packs(backend)
    clock.now += timedelta(hours=2)
    old = prune(repo, now=clock.now, margin=timedelta(hours=1))
    assert old.packs_deleted == 1
    assert not orphan & packs(backend)
    assert check(repo).ok


def test_prune_refuses_a_repository_with_missing_data(clocked: tuple[Repository, MemoryBackend, Clock]) -> None:
    repo, backend, clock = clocked
    store(repo, "x", os.urandom(200_000))
    victim = next(iter(packs(backend)))
    backend.delete(victim)
    with pytest.raises(IntegrityError, match="refusing to prune"):
        prune(repo, now=clock.now)


def test_prune_with_nothing_to_do_changes_nothing(
    clocked: tuple[Repository, MemoryBackend, Clock], tmp_path: Path
) -> None:
    """Nothing but the bundle of its snapshots (repository/bundle.py), once: a second prune
    changes nothing at all."""
    repo, backend, clock = clocked
    snapshot_id = store(repo, "x", os.urandom(200_000))
    before = {i.name for i in backend.list()}
    result = prune(repo, now=clock.now)
    assert not result.plan.changes_anything
    assert result.bundle is not None and result.bundle.written is not None
    assert {i.name for i in backend.list()} == before | {layout.bundle_name(result.bundle.written)}
    assert list(repo.load_bundle(result.bundle.written).objects) == [snapshot_id]
    before = {i.name for i in backend.list()}
    again = prune(repo, now=clock.now)
    assert again.bundle is not None and again.bundle.written is None
    assert {i.name for i in backend.list()} == before
