"""Every worker pool hands its failures to the command.

An exception of a type nobody expects — a bug in a provider (``crash``), or a
``BaseException`` such as the ``CancelledError`` an async SDK can let out (``cancelled``) —
raised inside a pool's job must fail the command: never hang it, never be lost in a future
nobody reads, never be counted as success. One test per pool: the backup's readers and the
write session's workers and uploaders, copy's three pools, check's pack readers, prune's
repack, and the WAL pusher and fetcher. (The restore's pool: test_restore_failures.py.)
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.errors import ExitCode, LifeboatError
from lifeboat.operations.backup import BackupRequest, backup_files
from lifeboat.operations.copy import copy_snapshots
from lifeboat.operations.maintenance import check, prune
from lifeboat.operations.wal_fetch import FetchFailed, FetchSettings, fetch_file
from lifeboat.operations.wal_push import BackgroundPusher, PushSettings, archive_file
from lifeboat.repository import layout
from lifeboat.repository.check import DataSubset
from lifeboat.repository.header import RepositoryHeader
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive
from lifeboat.sources.postgres.spool import Spool
from lifeboat.storage.faulty import FaultPlan, FaultyBackend, InjectedCrash
from lifeboat.storage.local import LocalBackend
from tests.conftest import FAST_KDF, PASSPHRASE
from tests.integration.deadline import within
from tests.postgres.fakewal import SYSTEM_ID, add_ready, make_pg_wal, segment_bytes

SEG1 = "000000010000000000000001"
KINDS = ("crash", "cancelled")
RAISED: dict[str, type[BaseException]] = {"crash": InjectedCrash, "cancelled": asyncio.CancelledError}
MiB = 1024 * 1024


def faulty_repo(path: Path, *, small_packs: bool = False) -> tuple[Repository, FaultyBackend]:
    backend = FaultyBackend(LocalBackend(path))
    header = None
    if small_packs:
        header = RepositoryHeader(os.urandom(16).hex(), datetime.now(UTC).isoformat(), pack_size=MiB)
    return Repository.init(backend, PASSPHRASE, kdf=FAST_KDF, header=header), backend


def fail(backend: FaultyBackend, kind: str, operation: str, *objects: str) -> None:
    """From now on every ``operation`` on ``objects`` fails with ``kind``."""
    backend.plan = FaultPlan(rate=1.0, kinds=(kind,), operations=(operation,), objects=objects)


def make_tree(root: Path, files: int = 12, size: int = 300_000) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"f{i:02}.bin").write_bytes(os.urandom(size))
    return root


def content_packs(repo: Repository) -> tuple[str, ...]:
    from lifeboat.core.treewalk import walk

    snapshot = repo.snapshots()[-1]
    return tuple(
        sorted(
            {
                layout.pack_name(repo.locate(blob).pack_id.hex())
                for _path, node in walk(repo, snapshot.tree)
                for blob in node.content
            }
        )
    )


# --- backup: the readers, the session's workers and uploaders ------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_upload_fails_the_backup_through_the_readers_and_saves_no_snapshot(tmp_path: Path, kind: str) -> None:
    repo, backend = faulty_repo(tmp_path / "repo", small_packs=True)  # packs go up while files are read
    source = make_tree(tmp_path / "source", files=30)
    fail(backend, kind, "put", "data/")
    with pytest.raises(RAISED[kind]):
        within(60, lambda: backup_files(repo, BackupRequest(paths=(str(source),), workers=2)))
    assert backend.plan.injected.get(kind, 0) >= 1
    backend.plan = FaultPlan()
    assert Repository.open(backend, PASSPHRASE).snapshot_ids() == []


# --- copy: the tree copier's content pool, the pack verification and the WAL pool ------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pool", ["content", "verify", "wal"])
def test_a_failing_job_fails_the_copy(tmp_path: Path, kind: str, pool: str) -> None:
    src, src_backend = faulty_repo(tmp_path / "src")
    dst, dst_backend = faulty_repo(tmp_path / "dst")
    backup_files(src, BackupRequest(paths=(str(make_tree(tmp_path / "source")),)))
    WalArchive(src, SYSTEM_ID).push(SEG1, segment_bytes(SEG1))
    if pool == "content":
        fail(src_backend, kind, "get_range", *content_packs(src))
    elif pool == "verify":
        fail(dst_backend, kind, "get", "data/")
    else:
        fail(src_backend, kind, "get", "wal/")
    with pytest.raises(RAISED[kind]):
        within(60, lambda: copy_snapshots(src, dst, workers=2))
    dst_backend.plan = FaultPlan()
    copied = Repository.open(dst_backend, PASSPHRASE)
    assert len(copied.snapshot_ids()) == (1 if pool == "wal" else 0)  # the WAL is copied after the snapshots
    assert not WalArchive(copied, SYSTEM_ID).exists(SEG1)


# --- check --read-data: the pack readers --------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_pack_read_fails_check(tmp_path: Path, kind: str) -> None:
    repo, backend = faulty_repo(tmp_path / "repo")
    backup_files(repo, BackupRequest(paths=(str(make_tree(tmp_path / "source")),)))
    fail(backend, kind, "get", "data/")
    with pytest.raises(RAISED[kind]):
        within(60, lambda: check(Repository.open(backend, PASSPHRASE), read_data=DataSubset()))


# --- prune: the repack's session ------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_repack_fails_prune_and_removes_nothing(tmp_path: Path, kind: str) -> None:
    repo, backend = faulty_repo(tmp_path / "repo")
    source = make_tree(tmp_path / "source", files=6)
    first = backup_files(repo, BackupRequest(paths=(str(source),))).snapshot
    for i in range(1, 6):
        (source / f"f{i:02}.bin").unlink()
    backup_files(repo, BackupRequest(paths=(str(source),)))
    repo.delete_snapshot(first.id)  # most of the one pack is unused now: prune repacks it
    before = sorted(i.name for i in backend.list(""))
    fail(backend, kind, "put", "data/")
    with pytest.raises(RAISED[kind]):
        within(60, lambda: prune(Repository.open(backend, PASSPHRASE), now=datetime.now(UTC) + timedelta(days=1)))
    backend.plan = FaultPlan()
    after = {i.name for i in backend.list("")}
    assert set(before) <= after  # nothing was removed
    assert check(Repository.open(backend, PASSPHRASE), read_data=DataSubset()).ok


# --- the WAL pusher and fetcher -------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_push_job_fails_the_archive_call_and_acknowledges_nothing(tmp_path: Path, kind: str) -> None:
    repo, backend = faulty_repo(tmp_path / "repo")
    archive = WalArchive(repo, SYSTEM_ID)
    pg_wal = make_pg_wal(tmp_path / "data")
    add_ready(pg_wal, SEG1)
    spool = Spool(tmp_path / "spool").ensure()
    fail(backend, kind, "put", "wal/")

    def start_worker() -> None:
        BackgroundPusher(archive, pg_wal, spool, PushSettings(idle_exit=0.01)).run()

    with pytest.raises(LifeboatError, match=RAISED[kind].__name__) as raised:
        within(60, lambda: archive_file(SEG1, pg_wal, spool, start_worker, PushSettings(timeout=30)))
    assert raised.value.exit_code == ExitCode.ERROR
    assert spool.push_done(SEG1) is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_fetch_job_fails_the_fetch(tmp_path: Path, kind: str) -> None:
    from lifeboat.operations.wal_fetch import BackgroundFetcher

    repo, backend = faulty_repo(tmp_path / "repo")
    archive = WalArchive(repo, SYSTEM_ID)
    archive.push(SEG1, segment_bytes(SEG1))
    spool = Spool(tmp_path / "spool").ensure()
    fail(backend, kind, "get", "wal/")
    settings = FetchSettings(idle_exit=0.3, poll=0.002, timeout=30)

    def start_worker() -> None:
        BackgroundFetcher(archive, spool, settings, segment_size=16 * MiB).run()

    with pytest.raises(FetchFailed, match=RAISED[kind].__name__):
        within(60, lambda: fetch_file(SEG1, tmp_path / "RECOVERYXLOG", spool, start_worker, settings))
    assert not (tmp_path / "RECOVERYXLOG").exists()
