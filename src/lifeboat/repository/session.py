"""The write session: how new blobs become packs, index files and finally a snapshot.

Blobs handed to :meth:`WriteSession.save_blob` are deduplicated against the index and
against blobs already in flight, then compressed by a pool of worker threads (zstd and
AES-GCM release the GIL, so every core works). One pack per blob type is filled under a
short lock; a full pack goes to an upload queue whose threads put it to storage. Only
after a pack is durable are its blobs added to the index; index files are written only
for uploaded packs, and the caller writes its snapshot only after :meth:`commit`
returns. So the write order packs → index → snapshot holds, and a crash at any moment
leaves unreferenced packs at worst, never a reference to missing data.

Memory is bounded: a byte budget caps blobs waiting for the workers, the upload queue
is short, and each pack is at most the configured pack size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from lifeboat.core.ids import BlobType
from lifeboat.core.tree import Tree
from lifeboat.repository import layout
from lifeboat.repository.index import MAX_ENTRIES_PER_FILE, BlobIndex, IndexedPack, encode_index_file, encode_pack
from lifeboat.repository.pack import PackEntry, PackWriter
from lifeboat.repository.repo import Repository
from lifeboat.storage.base import Staged, connections, staging

_SENTINEL = object()
# Bytes of blobs handed to the workers and not yet packed: two of the largest chunks (2 MiB)
# keep both workers busy; more buys no speed, only memory.
PENDING_BYTES = 4 * 1024 * 1024


@dataclass
class SessionStats:
    """What a session stored (for summaries, progress and metrics)."""

    blobs_new: int = 0
    blobs_deduplicated: int = 0
    bytes_new: int = 0  # plaintext bytes of new blobs
    bytes_deduplicated: int = 0
    bytes_stored: int = 0  # pack bytes uploaded
    packs: int = 0
    index_files: list[str] = field(default_factory=list)


@dataclass
class _FinishedPack:
    """A sealed pack waiting for an uploader: its name, bytes, salt and entries."""

    pack_hex: str
    data: bytes | bytearray  # empty when staged
    salt: bytes
    entries: list[PackEntry]
    size: int
    staged: Staged | None  # written to storage already, to be published under its name

    @classmethod
    def of(cls, packer: PackWriter) -> _FinishedPack:
        entries, salt = list(packer.entries), packer.salt
        pack_hex, data = packer.finish()
        return cls(pack_hex, data, salt, entries, packer.size, packer.sink)

    def discard(self) -> None:
        """Drop a pack that will not be stored (a staged one is removed)."""
        self.data = b""
        if self.staged is not None:
            self.staged.discard()
            self.staged = None


class _ByteBudget:
    """A counting semaphore over bytes: callers block while the budget is spent."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._open = False
        self._cond = threading.Condition()

    def take(self, amount: int) -> None:
        with self._cond:
            while not self._open and self._used > 0 and self._used + amount > self._limit:
                self._cond.wait()
            self._used += amount

    def open(self) -> None:
        """Let every waiter through: the session was aborted, and work it cancelled never
        gives its bytes back."""
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def give(self, amount: int) -> None:
        with self._cond:
            self._used -= amount
            self._cond.notify_all()


class WriteSession:
    """Stores new blobs of one backup; use as a context manager, then :meth:`commit`."""

    def __init__(
        self,
        repo: Repository,
        *,
        workers: int = 2,
        uploads: int | None = None,
        pending_bytes: int = PENDING_BYTES,
        on_pack: Callable[[str, int], None] | None = None,
        index: BlobIndex | None = None,
    ) -> None:
        self.repo = repo
        self.stats = SessionStats()
        # New packs are added to this index as they land; by default the repository's,
        # so later sessions of this process deduplicate against them too.
        self._index = index if index is not None else repo.index()
        self._pack_size = repo.header.pack_size
        self._workers = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="lifeboat-pack")
        self._budget = _ByteBudget(pending_bytes)
        self._state = threading.Lock()  # guards _in_flight, stats, index, _promised
        self._promised: set[Future[bytes]] = set()  # blob ids handed out by submit_blob, not yet known
        self._in_flight: set[bytes] = set()
        self._packers: dict[BlobType, PackWriter] = {}
        self._packer_locks = {t: threading.Lock() for t in BlobType}
        uploaders = max(1, uploads if uploads is not None else connections(repo.backend))
        # Every pack in memory (being filled, waiting, or going up) holds a slot until it is
        # stored: one being filled per blob type plus one per uploader bounds the memory of a
        # session to that many packs, whatever the data size.
        self._pack_slots = threading.BoundedSemaphore(uploaders + len(BlobType))
        self._uploads: queue.Queue[object] = queue.Queue()
        self._uploaders = [
            threading.Thread(target=self._upload_loop, name=f"lifeboat-upload-{i}", daemon=True)
            for i in range(uploaders)
        ]
        for thread in self._uploaders:
            thread.start()
        self._outstanding = 0  # blobs submitted to the workers and not yet packed
        self._idle = threading.Condition(self._state)
        self._unindexed: list[bytes] = []  # encoded packs (index.encode_pack) not in an index file yet
        self._unindexed_entries = 0
        self._error: BaseException | None = None
        self._closed = False
        self._on_pack = on_pack
        # Storage that stages (local disk) takes each pack as it is filled: no pack in memory.
        self._staging = staging(repo.backend)

    # --- the BlobSaver protocol --------------------------------------------------------------
    def blob_id(self, data: bytes | memoryview) -> bytes:
        return self.repo.blob_id(data)

    def has_blob(self, blob_id: bytes) -> bool:
        with self._state:
            return blob_id in self._in_flight or blob_id in self._index

    def has_blobs(self, blob_ids: Sequence[bytes]) -> bool:
        with self._state:
            in_flight = self._in_flight
            return self._index.has_all(b for b in blob_ids if b not in in_flight)

    def save_blob(self, blob_type: BlobType, data: bytes | memoryview, blob_id: bytes | None = None) -> bool:
        self._raise_if_failed()
        if blob_id is None:
            blob_id = self.repo.blob_id(data)
        size = len(data)
        with self._state:
            if blob_id in self._in_flight or blob_id in self._index:
                self.stats.blobs_deduplicated += 1
                self.stats.bytes_deduplicated += size
                return False
            self._in_flight.add(blob_id)
            self.stats.blobs_new += 1
            self.stats.bytes_new += size
        self._dispatch(size, self._store, blob_type, data, blob_id)
        return True

    def submit_blob(self, blob_type: BlobType, data: bytes | memoryview) -> Future[bytes]:
        """Hash, deduplicate and store ``data`` on a worker; the future gives its id.

        The reader of a large file only cuts it into chunks, and the workers hash them in
        parallel. The id is known as soon as the blob is hashed; durability comes with
        :meth:`commit`, as for :meth:`save_blob`. A view (a chunker's buffer) is copied only
        once the memory budget has room for it, so readers waiting for the workers hold no
        copies.
        """
        self._raise_if_failed()
        future: Future[bytes] = Future()
        with self._state:
            self._promised.add(future)
        future.add_done_callback(self._kept)
        self._dispatch(len(data), self._hash_and_store, blob_type, data, future)
        return future

    def _kept(self, future: Future[bytes]) -> None:
        with self._state:
            self._promised.discard(future)

    def _dispatch(self, size: int, work: Callable[..., None], blob_type: BlobType, data: bytes | memoryview,
                  *args: object) -> None:  # fmt: skip
        """Hand ``work`` on ``data`` (``size`` bytes) to a worker, once the memory budget allows
        it; a view is copied then, not before."""
        self._budget.take(size)
        if not isinstance(data, bytes):
            data = bytes(data)
        with self._state:
            self._outstanding += 1
        try:
            self._workers.submit(work, blob_type, data, *args)
        except RuntimeError:  # the pool was shut down by abort()
            self._done(size)
            self._raise_if_failed()
            raise

    def save_tree(self, tree: Tree) -> bytes:
        data = tree.encode()
        blob_id = self.repo.blob_id(data)
        self.save_blob(BlobType.TREE, data, blob_id)
        return blob_id

    # --- workers ----------------------------------------------------------------------------------
    def _done(self, size: int) -> None:
        self._budget.give(size)
        with self._state:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._idle.notify_all()

    def _store(self, blob_type: BlobType, data: bytes, blob_id: bytes) -> None:
        try:
            if self._error is None:
                self._pack(blob_type, blob_id, data)
        except BaseException as exc:  # noqa: BLE001 - a worker thread reports any failure via commit()
            if self._error is None:
                self._error = exc
        finally:
            self._done(len(data))

    def _hash_and_store(self, blob_type: BlobType, data: bytes, future: Future[bytes]) -> None:
        try:
            blob_id = self.repo.blob_id(data)
            with self._state:
                new = blob_id not in self._in_flight and blob_id not in self._index
                if new:
                    self._in_flight.add(blob_id)
                    self.stats.blobs_new += 1
                    self.stats.bytes_new += len(data)
                else:
                    self.stats.blobs_deduplicated += 1
                    self.stats.bytes_deduplicated += len(data)
            future.set_result(blob_id)
            if new and self._error is None:
                self._pack(blob_type, blob_id, data)
        except BaseException as exc:  # noqa: BLE001 - reported to the waiter and via commit()
            if not future.done():
                future.set_exception(exc)
            if self._error is None:
                self._error = exc
        finally:
            self._done(len(data))

    def _pack(self, blob_type: BlobType, blob_id: bytes, data: bytes) -> None:
        payload = self.repo.compressor.payload(data)
        full: PackWriter | None = None
        with self._packer_locks[blob_type]:
            packer = self._packers.get(blob_type)
            if packer is None:
                self._take_pack_slot()
                try:
                    sink = self._staging.stage(layout.DATA) if self._staging is not None else None
                except BaseException:
                    self._pack_slots.release()
                    raise
                packer = self._packers[blob_type] = PackWriter(self.repo.encryption_root, sink)
            packer.add(blob_type, blob_id, payload, len(data))
            if packer.size >= self._pack_size:
                full = self._packers.pop(blob_type)
        if full is not None:
            self._enqueue(_FinishedPack.of(full))

    def _take_pack_slot(self) -> None:
        """Wait until fewer packs are in memory than the session allows."""
        while not self._pack_slots.acquire(timeout=0.5):
            if self._error is not None:
                raise RuntimeError("upload failed") from self._error

    def _enqueue(self, pack: _FinishedPack) -> None:
        if self._error is not None:
            pack.discard()
            self._pack_slots.release()
            raise RuntimeError("upload failed") from self._error
        self._uploads.put(pack)

    def _upload_loop(self) -> None:
        while True:
            item = self._uploads.get()
            if item is _SENTINEL:
                return
            assert isinstance(item, _FinishedPack)
            try:
                if self._error is None:
                    self._upload(item)
            except BaseException as exc:  # noqa: BLE001 - an uploader reports any failure via commit(); a
                # BaseException too (an async SDK's CancelledError): a dead uploader would leave
                # its pack unstored with no error, and every writer waiting for a pack slot
                if self._error is None:
                    self._error = exc
            finally:
                item.discard()  # stored, or never will be
                self._pack_slots.release()

    def _upload(self, finished: _FinishedPack) -> None:
        pack_hex, size = finished.pack_hex, finished.size
        self.repo.ensure_locked()
        if finished.staged is not None:
            finished.staged.publish(layout.pack_name(pack_hex))
            finished.staged = None
        else:
            self.repo.backend.put(layout.pack_name(pack_hex), finished.data)
        entries = finished.entries
        pack = IndexedPack(bytes.fromhex(pack_hex), finished.salt, size, entries)
        finished.data = b""  # the bytes are stored: let them go before the index work
        encoded = encode_pack(pack)  # kept for the index file instead of an object per blob
        index_now: bytes | None = None
        with self._state:
            self._index.add_pack(pack)
            for entry in entries:
                self._in_flight.discard(entry.id)
            self._unindexed.append(encoded)
            self._unindexed_entries += len(entries)
            self.stats.packs += 1
            self.stats.bytes_stored += size
            if self._unindexed_entries >= MAX_ENTRIES_PER_FILE:
                index_now, self._unindexed, self._unindexed_entries = encode_index_file(self._unindexed), [], 0
        if self._on_pack is not None:
            self._on_pack(pack_hex, size)
        if index_now is not None:
            self._write_index(index_now)

    def _write_index(self, index: bytes) -> None:
        index_id = self.repo.save_index_file(index)
        with self._state:
            self.stats.index_files.append(index_id)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # --- completion ---------------------------------------------------------------------------
    def commit(self) -> SessionStats:
        """Wait for every blob, upload the last packs, write the index; then return."""
        if self._closed:
            raise RuntimeError("session already closed")
        with self._state:
            while self._outstanding:
                self._idle.wait()
        self._raise_if_failed()
        for blob_type in BlobType:
            with self._packer_locks[blob_type]:
                packer = self._packers.pop(blob_type, None)
            if packer is not None:
                if len(packer):
                    self._enqueue(_FinishedPack.of(packer))
                else:
                    packer.discard()
                    self._pack_slots.release()
        self._stop_uploaders()
        self._raise_if_failed()
        with self._state:
            rest, self._unindexed, self._unindexed_entries = self._unindexed, [], 0
        if rest:
            self._write_index(encode_index_file(rest))
        return self.stats

    def _stop_uploaders(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._workers.shutdown(wait=True)
        for _ in self._uploaders:
            self._uploads.put(_SENTINEL)
        for thread in self._uploaders:
            thread.join()

    def abort(self) -> None:
        """Stop without writing an index: whatever was uploaded stays unreferenced."""
        if self._error is None:
            self._error = RuntimeError("session aborted")
        self._budget.open()  # a reader waiting for memory must not wait for work that was cancelled
        self._workers.shutdown(wait=True, cancel_futures=True)
        # The work cancelled above never resolves the ids it promised: cancel them, so a reader
        # waiting for one (a file being read when Ctrl-C came) ends instead of blocking the exit.
        with self._state:
            promised = list(self._promised)
        for future in promised:
            future.cancel()
        # Drain anything queued so uploaders can see the sentinel.
        while True:
            try:
                item = self._uploads.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _FinishedPack):
                item.discard()
                self._pack_slots.release()
        self._stop_uploaders()
        for blob_type in BlobType:  # packs being filled: a staged one leaves nothing behind
            with self._packer_locks[blob_type]:
                packer = self._packers.pop(blob_type, None)
            if packer is not None:
                packer.discard()

    def __enter__(self) -> WriteSession:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._closed:
            self.abort()
