"""A restore reads a snapshot's trees by pack: a request per tree pack, not one per directory
(on disk and on an S3 server); memory for them stays within the reader's budget; a damaged
tree still fails its own directory alone."""

from __future__ import annotations

import os
import random
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.core.ids import BlobType
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import NodeType
from lifeboat.core.treewalk import find, walk
from lifeboat.errors import IntegrityError
from lifeboat.operations.backup import BackupRequest, backup_files
from lifeboat.operations.restore import restore_snapshot
from lifeboat.repository import layout
from lifeboat.repository.repo import Repository
from lifeboat.repository.treespans import TreeSpans
from lifeboat.sources.files.restorer import RestoreOptions
from lifeboat.storage.base import Backend, read_stream
from lifeboat.storage.local import LocalBackend
from lifeboat.storage.readahead import DEFAULT_WINDOW, ReadAheadBackend
from lifeboat.storage.retry import RetryingBackend
from lifeboat.storage.wrapper import BackendWrapper
from tests.conftest import FAST_KDF, PASSPHRASE
from tests.servers.fixtures import Server, new_bucket
from tests.storage.remote import provider, s3_url, use_env

TOP, SUB = 6, 5  # 6 directories of 5 subdirectories each: 36 directories below the root


class CountingReads(BackendWrapper):
    """Counts the requests that read an object, by object name (a stream is one request)."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.reads: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.reads[name] += 1

    def get(self, name: str) -> bytes:
        self._count(name)
        return super().get(name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        self._count(name)
        return super().get_range(name, offset, length)

    def get_stream(self, name: str, offset: int, length: int) -> Iterator[bytes]:
        self._count(name)
        return read_stream(self._inner, name, offset, length)

    def pack_reads(self, packs: set[bytes]) -> int:
        """Requests that read one of ``packs``."""
        names = {layout.pack_name(pack_id.hex()) for pack_id in packs}
        return sum(count for name, count in self.reads.items() if name in names)


def many_directories(root: Path) -> Path:
    """A tree of 36 small directories, two small files in each."""
    rng = random.Random(7)
    for top in range(TOP):
        for sub in range(SUB):
            folder = root / f"top{top}" / f"sub{sub}"
            folder.mkdir(parents=True)
            for number in range(2):
                (folder / f"f{number}.txt").write_bytes(rng.randbytes(rng.randint(10, 3000)))
    return root


def packs_of(repo: Repository, blob_type: BlobType) -> set[bytes]:
    return {location.pack_id for _, location in repo.index().items() if location.type is blob_type}


def backed_up(repo: Repository, source: Path) -> Snapshot:
    return backup_files(repo, BackupRequest(paths=(str(source),))).snapshot


def assert_restored(source: Path, target: Path) -> None:
    for path in source.rglob("*"):
        restored = target / path.relative_to(source)
        assert restored.is_dir() if path.is_dir() else restored.read_bytes() == path.read_bytes()


def test_a_restore_reads_each_tree_pack_once_not_each_directory(tmp_path: Path) -> None:
    backend = CountingReads(LocalBackend(tmp_path / "repo"))
    repo = Repository.init(backend, PASSPHRASE, kdf=FAST_KDF)
    source = many_directories(tmp_path / "src")
    snapshot = backed_up(repo, source)
    tree_packs, data_packs = packs_of(repo, BlobType.TREE), packs_of(repo, BlobType.DATA)
    backend.reads.clear()
    done = restore_snapshot(repo, f"{snapshot.id}:{source}", RestoreOptions(target=str(tmp_path / "out")))
    assert done.result.errors == 0 and done.result.dirs == TOP * (SUB + 1)
    assert_restored(source, tmp_path / "out")
    # The size check, the walk and the path's own directories: one read of the tree pack,
    # where there was one per directory and per pass (78 here); the data in one stream.
    assert backend.pack_reads(tree_packs) == len(tree_packs) == 1
    assert backend.pack_reads(data_packs) == len(data_packs) == 1


def test_a_restore_from_an_s3_server_reads_each_tree_pack_once(
    rclone_server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Through the wrappers a repository on S3 is opened with (retries, read-ahead), on a
    server that answers ranged reads with 200: the restore's requests are counted at the provider."""
    use_env(monkeypatch, rclone_server)
    url = s3_url(rclone_server, new_bucket(rclone_server), conditional_writes="false")
    counting = CountingReads(provider(url))
    backend = ReadAheadBackend(RetryingBackend(counting), window=DEFAULT_WINDOW)
    repo = Repository.init(backend, PASSPHRASE, kdf=FAST_KDF)
    source = many_directories(tmp_path / "src")
    snapshot = backed_up(repo, source)
    second_source = many_directories(tmp_path / "src2")  # a second backup: a second tree pack
    backed_up(repo, second_source)
    repo = Repository.open(backend, PASSPHRASE)  # as a restore starts: nothing read yet
    counting.reads.clear()
    done = restore_snapshot(repo, f"{snapshot.id}:{source}", RestoreOptions(target=str(tmp_path / "out")))
    assert done.result.errors == 0 and done.result.files == 2 * TOP * SUB
    assert_restored(source, tmp_path / "out")
    trees = packs_of(repo, BlobType.TREE)
    assert len(trees) == 2
    assert counting.pack_reads(trees) == 1  # the snapshot's own tree pack alone, where there were 42 ranged reads
    assert counting.pack_reads(packs_of(repo, BlobType.DATA)) == 1
    # Everything else is the repository's opening: header, key, lock, snapshot, index files.
    assert sum(counting.reads.values()) <= 2 + 8


def test_trees_beyond_the_budget_are_let_go_and_read_again_by_span(local_repo: Repository, tmp_path: Path) -> None:
    source = many_directories(tmp_path / "src")
    snapshot = backed_up(local_repo, source)
    counting = CountingReads(local_repo.backend)
    repo = Repository.open(counting, PASSPHRASE)
    tree_ids = [snapshot.tree] + [
        node.subtree for _, node in walk(repo, snapshot.tree) if node.type is NodeType.DIR and node.subtree
    ]
    # Spans instead of the whole pack, each a tree or two, and room for a few of them.
    small = max(repo.locate(tree_id).length for tree_id in tree_ids) * 3
    spans = TreeSpans(repo, budget=small, whole_pack=0, gap=0, span_length=small // 3)
    spans.prefetch_trees(tree_ids)
    assert 0 < spans.held <= small
    assert 1 < spans.requests < len(tree_ids)  # half the budget per call: the rest is left for later
    counting.reads.clear()
    for tree_id in reversed(tree_ids):
        assert spans.load_tree(tree_id) == repo.load_tree(tree_id)
        assert spans.held <= small
    assert spans.requests > len(tree_ids) // 2  # what was let go was read again, a span at a time


def test_a_damaged_tree_read_with_its_neighbours_fails_its_directory_alone(
    local_repo: Repository, tmp_path: Path
) -> None:
    source = many_directories(tmp_path / "src")
    snapshot = backed_up(local_repo, source)
    damaged = find(local_repo, snapshot.tree, f"{str(source).lstrip('/')}/top2/sub3")
    assert damaged is not None and damaged.subtree is not None
    location = local_repo.locate(damaged.subtree)
    pack = tmp_path / "repo" / layout.pack_name(location.pack_id.hex())
    os.chmod(pack, 0o600)
    data = bytearray(pack.read_bytes())
    data[location.offset + location.length // 2] ^= 0x40
    pack.write_bytes(bytes(data))
    target = tmp_path / "out"
    done = restore_snapshot(local_repo, f"{snapshot.id}:{source}", RestoreOptions(target=str(target)))
    assert done.result.damaged == ["top2/sub3/"]
    assert done.result.files == 2 * (TOP * SUB - 1)
    assert not (target / "top2" / "sub3").exists() or not any((target / "top2" / "sub3").iterdir())
    assert (target / "top2" / "sub4" / "f1.txt").read_bytes() == (source / "top2" / "sub4" / "f1.txt").read_bytes()
    with pytest.raises(IntegrityError):
        TreeSpans(local_repo).load_tree(damaged.subtree)
