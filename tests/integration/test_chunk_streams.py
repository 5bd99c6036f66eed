"""A files backup cuts at most ``chunk_streams`` files above the smallest chunk at once: each
holds a chunking buffer, so the readers' memory does not grow with their number."""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from lifeboat.core.chunking import Chunker
from lifeboat.core.ids import BlobType
from lifeboat.core.treewalk import walk
from lifeboat.operations.backup import BackupRequest, backup_files
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession
from lifeboat.sources.files.archiver import FileArchiver, FileBackupOptions


class _CountingChunker:
    """The repository's chunker, counting the streams it cuts (with a chunking buffer) at once."""

    def __init__(self, chunker: Chunker) -> None:
        self._chunker = chunker
        self.min_size = chunker.min_size
        self._lock = threading.Lock()
        self._now = 0
        self.most = 0
        self.streams = 0

    def chunks(self, stream: BinaryIO, size_hint: int = -1) -> Iterator[memoryview]:
        if 0 <= size_hint < self.min_size:  # read whole, no chunking buffer
            yield from self._chunker.chunks(stream, size_hint)
            return
        with self._lock:
            self._now += 1
            self.streams += 1
            self.most = max(self.most, self._now)
        try:
            time.sleep(0.02)  # widen the window in which another reader could start a stream
            yield from self._chunker.chunks(stream, size_hint)
        finally:
            with self._lock:
                self._now -= 1


@pytest.mark.parametrize("chunk_streams", [1, 2])
def test_no_more_files_are_cut_at_once_than_chunk_streams(
    local_repo: Repository, tmp_path: Path, chunk_streams: int
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    chunker = local_repo.chunker()
    for i in range(12):
        (root / f"large-{i}.bin").write_bytes(os.urandom(chunker.min_size * 3))
        (root / f"small-{i}.txt").write_text(f"small file {i}")
    counting = _CountingChunker(chunker)
    options = FileBackupOptions(paths=(str(root),), readers=6, chunk_streams=chunk_streams)
    with WriteSession(local_repo, workers=2) as session:
        archive = FileArchiver(session, cast(Chunker, counting), options).run()
        session.commit()
    assert counting.streams == 12  # the small files are read whole, without a chunking buffer
    assert counting.most == chunk_streams
    names = sorted(p.rsplit("/", 1)[-1] for p, _ in walk(local_repo, archive.tree))
    assert len([n for n in names if n.startswith(("large-", "small-"))]) == 24


class _WatchedSaver:
    """The session, keeping an eye on how many of the blob futures it handed out are alive."""

    def __init__(self, session: WriteSession) -> None:
        self._session = session
        self._futures: weakref.WeakSet[Future[bytes]] = weakref.WeakSet()
        self.most_alive = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._session, name)

    def submit_blob(self, blob_type: BlobType, data: bytes | memoryview) -> Future[bytes]:
        future = self._session.submit_blob(blob_type, data)
        self._futures.add(future)
        self.most_alive = max(self.most_alive, len(self._futures))
        return future


def test_a_large_file_does_not_hold_a_future_per_block(local_repo: Repository, tmp_path: Path) -> None:
    """A future holds a condition and its locks (some 1.5 KiB): a 1 GiB relation file's 8,192
    blocks once held 12 MiB of them until the file's end. Those already stored give way to
    their blob ids as the file is read, and the file still records every block, in order."""
    root = tmp_path / "data"
    root.mkdir()
    blocks = 4096
    content = os.urandom(4096 * blocks)
    (root / "relation").write_bytes(content)
    options = FileBackupOptions(paths=(str(root),), block_size_for=lambda path: 4096)
    with WriteSession(local_repo, workers=2, pending_bytes=256 * 1024) as session:  # 64 blocks in flight
        saver = _WatchedSaver(session)
        archive = FileArchiver(cast(WriteSession, saver), local_repo.chunker(), options).run()
        session.commit()
    assert saver.most_alive < blocks // 4, saver.most_alive
    node = next(n for p, n in walk(local_repo, archive.tree) if p.endswith("/relation"))
    assert node.content is not None and len(node.content) == blocks
    restored = b"".join(local_repo.load_blob(blob_id, BlobType.DATA) for blob_id in node.content)
    assert restored == content


@pytest.mark.parametrize(("workers", "streams"), [(2, 1), (4, 2)])
def test_a_files_backup_cuts_half_its_workers_of_large_files_at_once(
    local_repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, streams: int
) -> None:
    """The default on two cores (two workers) holds one chunking buffer: a second bought 4 % of
    a first backup's time for 5 MiB more at the peak."""
    root = tmp_path / "data"
    root.mkdir()
    chunker = local_repo.chunker()
    for i in range(12):
        (root / f"large-{i}.bin").write_bytes(os.urandom(chunker.min_size * 3))
    counting = _CountingChunker(chunker)
    monkeypatch.setattr(Repository, "chunker", lambda self: counting)
    result = backup_files(local_repo, BackupRequest(paths=(str(root),), workers=workers))
    assert counting.streams == 12
    assert counting.most == streams
    names = sorted(p.rsplit("/", 1)[-1] for p, _ in walk(local_repo, result.snapshot.tree))
    assert [n for n in names if n.startswith("large-")] == sorted(f"large-{i}.bin" for i in range(12))
