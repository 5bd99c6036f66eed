"""A repository opened read-only changes nothing: every write the storage offers — put,
put-if-absent, delete, removing a leftover temporary file, extending an object lock — is
refused with StorageReadOnly, and the bytes stored stay exactly as they were."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.errors import StorageReadOnly
from lifeboat.storage.base import object_lock, temporaries
from lifeboat.storage.local import LocalBackend
from lifeboat.storage.readonly import ReadOnlyBackend
from lifeboat.storage.registry import open_backend
from lifeboat.storage.wrapper import BackendWrapper
from tests.servers.fixtures import Server, new_bucket, s3_client
from tests.storage.remote import s3_url, use_env

# What a wrapper forwards that only reads; everything else it forwards is a write.
READS = {"location", "connections", "inner", "get", "get_range", "get_stream", "stat", "list", "close"}
LEFTOVER = "data/aa/.tmp-0123456789abcdef"


def stored_state(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and directory (None) below ``root``, temporary files included."""
    state: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        state[str(path.relative_to(root))] = path.read_bytes() if path.is_file() else None
    return state


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    writer = LocalBackend(root)
    writer.put("config", b"header")
    writer.put("data/aa/" + "a" * 64, b"pack bytes")
    writer.put("locks/" + "1" * 32, b"a lock")
    (root / LEFTOVER).write_bytes(b"half a pack")  # a writer killed before its rename
    return root


def test_every_write_through_a_read_only_backend_is_refused_and_changes_nothing(repo_dir: Path) -> None:
    before = stored_state(repo_dir)
    backend = open_backend(str(repo_dir), env={}, read_only=True)
    leftovers = temporaries(backend)
    assert leftovers is not None
    writes = {
        "put a new object": lambda: backend.put("data/bb/" + "b" * 64, b"new"),
        "put over an object": lambda: backend.put("config", b"replaced"),
        "put if absent": lambda: backend.put("keys/" + "2" * 32, b"key", if_absent=True),
        "delete an object": lambda: backend.delete("data/aa/" + "a" * 64),
        "delete a lock": lambda: backend.delete("locks/" + "1" * 32),
        "remove a temporary file": lambda: leftovers.remove_temporary(LEFTOVER),
    }
    for what, write in writes.items():
        with pytest.raises(StorageReadOnly, match="the repository is open read-only"):
            write()
        assert stored_state(repo_dir) == before, what
    assert backend.get("config") == b"header"  # reads pass
    assert [info.name for info in backend.list("locks/")] == ["locks/" + "1" * 32]
    assert [info.name for info in leftovers.temporaries()] == [LEFTOVER]


def test_the_read_only_backend_refuses_every_write_a_wrapper_forwards() -> None:
    """A call added to the wrapper base is forwarded to the provider: unless it only reads,
    ReadOnlyBackend must override it (and the test above must try it)."""
    forwarded = {name for name in vars(BackendWrapper) if not name.startswith("_")}
    assert forwarded - READS <= set(vars(ReadOnlyBackend)) - {"__module__", "__doc__"}


def test_a_read_only_backend_never_extends_an_object_lock(moto_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(monkeypatch, moto_server)
    bucket = new_bucket(moto_server, object_lock=True)
    url = s3_url(moto_server, bucket, object_lock="compliance", object_lock_period="2d")
    writer = open_backend(url, env=os.environ)
    writer.put("data/aa/pack", b"locked")
    writer.close()
    locked_until = s3_client(moto_server).head_object(Bucket=bucket, Key="repo/data/aa/pack")[
        "ObjectLockRetainUntilDate"
    ]
    reader = open_backend(url, env=os.environ, read_only=True)
    try:
        lock = object_lock(reader)
        assert lock is not None and lock.lock_period == timedelta(days=2)  # what prune plans with stays readable
        with pytest.raises(StorageReadOnly):
            lock.extend_lock("data/aa/pack", datetime.now(UTC) + timedelta(days=10))
    finally:
        reader.close()
    head = s3_client(moto_server).head_object(Bucket=bucket, Key="repo/data/aa/pack")
    assert head["ObjectLockRetainUntilDate"] == locked_until
