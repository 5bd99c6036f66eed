"""Deduplication: unchanged data costs nothing, a small edit costs a small chunk."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from lifeboat.operations.backup import BackupRequest, backup_files
from lifeboat.repository.repo import Repository
from lifeboat.storage.local import LocalBackend

MiB = 1024 * 1024


def repo_bytes(repo: Repository) -> int:
    assert isinstance(repo.backend, LocalBackend)
    return sum(f.stat().st_size for f in repo.backend.root.rglob("*") if f.is_file())


@pytest.mark.slow
def test_second_backup_of_an_unchanged_gigabyte_adds_under_one_percent(local_repo: Repository, tmp_path: Path) -> None:
    source = tmp_path / "big"
    rng = random.Random(7)
    for d in range(16):
        folder = source / f"dir{d:02d}"
        folder.mkdir(parents=True)
        for f in range(16):
            (folder / f"f{f:02d}.bin").write_bytes(rng.randbytes(4 * MiB))
    first = backup_files(local_repo, BackupRequest(paths=(str(source),)))
    assert first.archive.files_new == 256
    size_after_first = repo_bytes(local_repo)
    assert size_after_first > 1024 * MiB  # random data does not compress

    started = time.monotonic()
    second = backup_files(local_repo, BackupRequest(paths=(str(source),)))
    elapsed = time.monotonic() - started
    added = repo_bytes(local_repo) - size_after_first
    assert second.archive.files_unmodified == 256
    assert second.parent == first.snapshot.id
    assert added < 0.01 * size_after_first, f"second backup added {added} bytes"
    assert elapsed < 10, f"second backup of an unchanged tree took {elapsed:.1f}s"


def test_inserting_one_byte_at_the_start_of_a_100_mib_file_adds_under_2_mib(
    local_repo: Repository, tmp_path: Path
) -> None:
    source = tmp_path / "one"
    source.mkdir()
    payload = random.Random(3).randbytes(100 * MiB)
    (source / "data.bin").write_bytes(payload)
    backup_files(local_repo, BackupRequest(paths=(str(source),)))
    before = repo_bytes(local_repo)
    (source / "data.bin").write_bytes(b"!" + payload)
    result = backup_files(local_repo, BackupRequest(paths=(str(source),)))
    added = repo_bytes(local_repo) - before
    assert result.archive.files_changed == 1
    assert added < 2 * MiB, f"{added} bytes added"


def test_identical_files_are_stored_once(local_repo: Repository, tmp_path: Path) -> None:
    source = tmp_path / "copies"
    source.mkdir()
    payload = os.urandom(3 * MiB)
    for i in range(5):
        (source / f"copy{i}").write_bytes(payload)
    result = backup_files(local_repo, BackupRequest(paths=(str(source),)))
    assert result.stored.bytes_new < 3.1 * MiB
    assert result.stored.bytes_deduplicated >= 12 * MiB
