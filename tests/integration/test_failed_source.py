"""A failed source through the operations: missing named paths and empty streams save no
snapshot, while a file that vanishes during the walk stays a warning."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from lifeboat.core.progress import Notice, Severity
from lifeboat.core.treewalk import walk
from lifeboat.errors import SourceError
from lifeboat.operations.backup import BackupRequest, backup_files, backup_stream
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession
from lifeboat.sources.files.archiver import FileArchiver, FileBackupOptions


def test_a_file_vanishing_during_the_walk_is_a_warning_and_the_rest_is_kept(
    local_repo: Repository, tmp_path: Path
) -> None:
    root = tmp_path / "live"
    root.mkdir()
    (root / "a.bin").write_bytes(os.urandom(256 * 1024))
    (root / "b.txt").write_text("about to vanish")
    (root / "c.txt").write_text("stays")

    def remove_b(path: str, offset: int, block: bytes) -> None:
        # The directory was listed before a.bin is read; b.txt goes while the backup runs,
        # before the single reader (busy with a.bin) or the walker's lstat gets to it.
        if offset == 0:
            (root / "b.txt").unlink(missing_ok=True)

    notices: list[Notice] = []
    options = FileBackupOptions(
        paths=(str(root),),
        readers=1,
        block_size_for=lambda parts: 8192 if parts[-1] == "a.bin" else 0,
        on_block=remove_b,
    )
    with WriteSession(local_repo, workers=2) as session:
        archive = FileArchiver(session, local_repo.chunker(), options, notify=notices.append).run()
        session.commit()
    assert (archive.errors, archive.warnings) == (0, 1)
    assert notices == [Notice(Severity.WARNING, str(root / "b.txt"), "vanished before it could be read; skipped")]
    names = sorted(p.rsplit("/", 1)[-1] for p, _ in walk(local_repo, archive.tree))
    assert "a.bin" in names and "c.txt" in names and "b.txt" not in names


def test_backup_files_refuses_a_missing_path_before_taking_a_lock(local_repo: Repository, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        backup_files(local_repo, BackupRequest(paths=(str(tmp_path / "missing"),)))
    assert local_repo.snapshots() == []
    assert list(local_repo.backend.list("locks/")) == []


def test_an_empty_stream_saves_nothing_unless_allowed(local_repo: Repository) -> None:
    with pytest.raises(SourceError, match="empty"):
        backup_stream(local_repo, io.BytesIO(b""), name="dump")
    assert local_repo.snapshots() == []
    saved = backup_stream(local_repo, io.BytesIO(b""), name="dump", allow_empty=True)
    assert saved.archive.bytes_total == 0 and len(local_repo.snapshots()) == 1
