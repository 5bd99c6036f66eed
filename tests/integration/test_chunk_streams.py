"""A files backup cuts at most ``chunk_streams`` files above the smallest chunk at once: each
holds a chunking buffer, so the readers' memory does not grow with their number."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from lifeboat.core.chunking import Chunker
from lifeboat.core.treewalk import walk
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
