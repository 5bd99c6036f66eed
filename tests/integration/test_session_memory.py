"""A write session holds a bounded number of packs in memory, however slow the storage."""

from __future__ import annotations

import gc
import os
import secrets
import sys
import threading
import time

from lifeboat.core.ids import BlobType
from lifeboat.repository.header import RepositoryHeader
from lifeboat.repository.pack import PackWriter
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession, _FinishedPack
from lifeboat.storage.memory import MemoryBackend
from lifeboat.storage.wrapper import BackendWrapper
from tests.conftest import FAST_KDF, PASSPHRASE

MiB = 1024 * 1024


class GatedBackend(BackendWrapper):
    """Pack uploads wait until the gate opens; everything else goes straight through."""

    def __init__(self, inner: MemoryBackend) -> None:
        super().__init__(inner)
        self.gate = threading.Event()
        self.waiting = 0
        self._count = threading.Lock()

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        if name.startswith("data/"):
            with self._count:
                self.waiting += 1
            self.gate.wait(timeout=60)
        super().put(name, data, if_absent=if_absent)


def deep_size(root: object) -> int:
    """The bytes of ``root`` and of every object it reaches (each counted once)."""
    seen: set[int] = set()
    todo, total = [root], 0
    while todo:
        item = todo.pop()
        if id(item) in seen or isinstance(item, type):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        todo.extend(gc.get_referents(item))
    return total


def packs_in_memory() -> int:
    """Packs sealed and not yet stored, and packs being filled."""
    gc.collect()
    return sum(
        1
        for o in gc.get_objects()
        if (isinstance(o, _FinishedPack) and len(o.data)) or (isinstance(o, PackWriter) and len(o))
    )


def test_a_stalled_upload_stops_the_backup_instead_of_filling_memory() -> None:
    header = RepositoryHeader(secrets.token_hex(16), "2026-11-22T00:00:00+00:00", pack_size=1 * MiB)
    inner = MemoryBackend()
    Repository.init(inner, PASSPHRASE, kdf=FAST_KDF, header=header)
    backend = GatedBackend(inner)
    repo = Repository.open(backend, PASSPHRASE)
    blobs = [os.urandom(256 * 1024) for _ in range(160)]  # 40 MiB: far more than the packs and budget allowed
    fed = 0
    session = WriteSession(repo, workers=2, uploads=2)

    def feed() -> None:
        nonlocal fed
        for blob in blobs:
            session.save_blob(BlobType.DATA, blob, repo.blob_id(blob))
            fed += 1

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    deadline = time.monotonic() + 10
    while backend.waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # time enough to fill memory, were it not bounded
    assert backend.waiting == 2  # both uploaders hold a pack
    assert packs_in_memory() <= 2 + len(BlobType)  # one per uploader, one being filled per blob type
    assert feeder.is_alive() and fed < len(blobs)  # the backup waits for the storage

    backend.gate.set()
    feeder.join(timeout=60)
    assert fed == len(blobs)
    stats = session.commit()
    assert stats.blobs_new == len(blobs)
    reopened = Repository.open(inner, PASSPHRASE)
    assert list(reopened.load_blobs([repo.blob_id(b) for b in blobs])) == blobs


def test_a_view_of_a_reused_buffer_is_stored_as_it_was_when_handed_over() -> None:
    """Readers hand the session views of their own chunk buffers, as the chunker does, and
    refill them at once; the session copies a view only once its memory budget has room (so
    readers waiting for the workers hold no copies) but before the call returns: every blob
    stored is the bytes its view showed when it was handed over, even with the storage stalled
    and the readers waiting."""
    header = RepositoryHeader(secrets.token_hex(16), "2026-11-22T00:00:00+00:00", pack_size=1 * MiB)
    inner = MemoryBackend()
    Repository.init(inner, PASSPHRASE, kdf=FAST_KDF, header=header)
    backend = GatedBackend(inner)
    repo = Repository.open(backend, PASSPHRASE)
    session = WriteSession(repo, workers=1, uploads=1, pending_bytes=1 * MiB)
    handed: list[list[bytes]] = [[] for _ in range(3)]
    ids: list[list[bytes]] = [[] for _ in range(3)]

    def read(reader: int) -> None:
        buffer = bytearray(512 * 1024)
        futures = []
        for _ in range(8):
            buffer[:] = os.urandom(len(buffer))
            handed[reader].append(bytes(buffer))
            futures.append(session.submit_blob(BlobType.DATA, memoryview(buffer)))
        ids[reader] = [future.result(timeout=60) for future in futures]

    readers = [threading.Thread(target=read, args=(i,)) for i in range(3)]
    for thread in readers:
        thread.start()
    deadline = time.monotonic() + 10
    while backend.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backend.waiting == 1 and any(thread.is_alive() for thread in readers)  # the readers wait
    backend.gate.set()
    for thread in readers:
        thread.join(timeout=60)
        assert not thread.is_alive()
    session.commit()
    blobs = [blob for kept in handed for blob in kept]
    assert [i for kept in ids for i in kept] == [repo.blob_id(b) for b in blobs]
    reopened = Repository.open(inner, PASSPHRASE)
    assert list(reopened.load_blobs([repo.blob_id(b) for b in blobs])) == blobs


def test_the_index_entries_of_stored_packs_are_kept_in_their_encoded_size() -> None:
    """Until it writes an index file (up to 100,000 blobs), a session keeps the index entries of
    the packs it stored: as the bytes the index file will hold (45 bytes a blob), not an object
    per blob and its id (about 150 bytes a blob: 15 MiB at 100,000 blobs)."""
    header = RepositoryHeader(secrets.token_hex(16), "2026-11-22T00:00:00+00:00", pack_size=1 * MiB)
    backend = MemoryBackend()
    Repository.init(backend, PASSPHRASE, kdf=FAST_KDF, header=header)
    repo = Repository.open(backend, PASSPHRASE)
    session = WriteSession(repo, workers=2, uploads=1)
    blobs = [os.urandom(200) for _ in range(20_000)]
    for blob in blobs:
        session.save_blob(BlobType.DATA, blob)
    with session._state:
        while session._outstanding:
            session._idle.wait(timeout=60)
    stored = len(repo.index())  # the blobs of the packs stored so far (the rest are being packed)
    assert stored >= 10_000
    assert deep_size(session._unindexed) <= 64 * stored
    session.commit()
    reopened = Repository.open(backend, PASSPHRASE)
    assert list(reopened.load_blobs([repo.blob_id(b) for b in blobs[::997]])) == blobs[::997]
