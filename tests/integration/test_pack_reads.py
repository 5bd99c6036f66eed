"""A restore reads by pack: each needed part of a pack once, as a stream, whatever the files."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from lifeboat.core.packreads import FileBlobs, plan_reads
from lifeboat.core.treewalk import find
from lifeboat.operations.backup import BackupRequest, backup_files
from lifeboat.operations.restore import restore_snapshot
from lifeboat.repository.repo import Repository
from lifeboat.sources.files.restorer import RestoreOptions
from lifeboat.storage.base import read_stream
from lifeboat.storage.local import LocalBackend
from lifeboat.storage.wrapper import BackendWrapper
from tests.conftest import FAST_KDF, PASSPHRASE


class CountingReads(BackendWrapper):
    """Counts the requests that read pack data: ranged reads and streams."""

    def __init__(self, inner: LocalBackend) -> None:
        super().__init__(inner)
        self.pack_requests = 0

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        self.pack_requests += name.startswith("data/")
        return super().get_range(name, offset, length)

    def get_stream(self, name: str, offset: int, length: int) -> Iterator[bytes]:
        self.pack_requests += name.startswith("data/")
        return read_stream(self._inner, name, offset, length)


def test_blobs_with_unneeded_ones_between_them_arrive_whole(local_repo: Repository, tmp_path: Path) -> None:
    """A read spans gaps (blobs no file needs) longer than what one piece of the stream holds."""
    source = tmp_path / "src"
    source.mkdir()
    payload = random.Random(3).randbytes(12 * 1024 * 1024)
    (source / "big.bin").write_bytes(payload)
    snapshot = backup_files(local_repo, BackupRequest(paths=(str(source),))).snapshot
    node = find(local_repo, snapshot.tree, f"{str(source).lstrip('/')}/big.bin")
    assert node is not None and len(node.content) > 12
    wanted = node.content[::4]  # every fourth blob: about 1.5 MiB skipped between two
    locations = local_repo.locate_data(wanted)
    reads = plan_reads([FileBlobs(0, wanted, locations)], max_read=1 << 30, max_gap=1 << 30)
    assert len(reads) == 1 and len(reads[0].blobs) == len(wanted)
    got = {blob.blob_id: data for blob, data in local_repo.read_pack_blobs(reads[0])}
    assert got == {blob_id: local_repo.load_blob(blob_id) for blob_id in wanted}


def test_many_small_files_in_one_pack_are_restored_from_one_request(tmp_path: Path) -> None:
    backend = CountingReads(LocalBackend(tmp_path / "repo"))
    repo = Repository.init(backend, PASSPHRASE, kdf=FAST_KDF)
    source = tmp_path / "src"
    rng = random.Random(4)
    for number in range(300):
        folder = source / f"d{number % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{number}.txt").write_bytes(rng.randbytes(rng.randint(1, 6000)))
    snapshot = backup_files(repo, BackupRequest(paths=(str(source),))).snapshot
    target = tmp_path / "restored"
    backend.pack_requests = 0
    restore_snapshot(repo, f"{snapshot.id}:{source}", RestoreOptions(target=str(target), dry_run=True))
    trees = backend.pack_requests  # what reading the trees takes (a dry run reads them alone)
    backend.pack_requests = 0
    done = restore_snapshot(repo, f"{snapshot.id}:{source}", RestoreOptions(target=str(target), workers=3))
    assert done.result.errors == 0 and done.result.files == 300
    for path in source.rglob("*.txt"):
        assert (target / path.relative_to(source)).read_bytes() == path.read_bytes()
    assert backend.pack_requests == trees + 1  # one stream brings all 300 files' data
