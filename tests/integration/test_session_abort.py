"""An aborted write session leaves no thread waiting: every blob id it promised and will not
deliver is cancelled, and its memory budget lets waiters through.

Found by interrupting backups in a loop: a reader thread waited for the id of a blob whose
hashing had been cancelled, and the process, its message printed, never exited."""

from __future__ import annotations

import os
import threading
from concurrent.futures import CancelledError
from typing import Any

import pytest

from lifeboat.core.ids import BlobType
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession


def test_abort_cancels_the_blob_ids_it_will_never_deliver(memory_repo: Repository) -> None:
    gate = threading.Event()
    real_blob_id = memory_repo.blob_id

    def held_blob_id(data: bytes) -> bytes:
        gate.wait(timeout=60)
        return real_blob_id(data)

    memory_repo.blob_id = held_blob_id  # type: ignore[method-assign]
    session = WriteSession(memory_repo, workers=1)
    real_shutdown = session._workers.shutdown

    def shutdown(wait: bool = True, *, cancel_futures: bool = False) -> None:
        real_shutdown(wait=False, cancel_futures=cancel_futures)  # the queued work is cancelled first…
        gate.set()  # …then the blob being hashed may finish
        real_shutdown(wait=wait)

    session._workers.shutdown = shutdown  # type: ignore[method-assign]
    running = session.submit_blob(BlobType.DATA, os.urandom(1000))  # taken by the only worker, held
    queued = [session.submit_blob(BlobType.DATA, os.urandom(1000)) for _ in range(3)]

    session.abort()

    assert len(running.result(timeout=10)) == 32  # the one that ran delivers its id
    for future in queued:  # the cancelled ones end at once instead of blocking their reader forever
        with pytest.raises(CancelledError):
            future.result(timeout=10)


def test_abort_lets_a_reader_waiting_for_memory_through(memory_repo: Repository) -> None:
    gate = threading.Event()
    real_blob_id = memory_repo.blob_id

    def held_blob_id(data: bytes) -> bytes:
        gate.wait(timeout=60)
        return real_blob_id(data)

    memory_repo.blob_id = held_blob_id  # type: ignore[method-assign]
    session = WriteSession(memory_repo, workers=1, pending_bytes=2000)
    session.submit_blob(BlobType.DATA, os.urandom(1000))  # running, held
    session.submit_blob(BlobType.DATA, os.urandom(1000))  # queued: the budget is spent; abort cancels it
    outcome: dict[str, Any] = {}

    def reader() -> None:  # another reader blocks on the budget the cancelled blob never gives back
        try:
            session.submit_blob(BlobType.DATA, os.urandom(1500))
            outcome["result"] = "submitted"
        except BaseException as exc:
            outcome["result"] = type(exc).__name__

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    real_shutdown = session._workers.shutdown

    def shutdown(wait: bool = True, *, cancel_futures: bool = False) -> None:
        real_shutdown(wait=False, cancel_futures=cancel_futures)
        gate.set()
        real_shutdown(wait=wait)

    session._workers.shutdown = shutdown  # type: ignore[method-assign]
    session.abort()
    thread.join(timeout=10)
    assert not thread.is_alive(), "a reader waiting for memory was left waiting after abort"
    assert outcome["result"] in {"RuntimeError", "submitted"}
