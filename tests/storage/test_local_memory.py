"""The contract suite on the local filesystem and in-memory backends, and their wrappers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.storage.base import Backend
from lifeboat.storage.local import LocalBackend
from lifeboat.storage.memory import MemoryBackend
from lifeboat.storage.retry import RetryingBackend, RetryPolicy
from tests.storage.contract import BackendContract


class TestLocalBackend(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        yield LocalBackend(tmp_path / "repo")

    def test_put_leaves_no_temporary_files(self, tmp_path: Path) -> None:
        backend = LocalBackend(tmp_path / "repo")
        for i in range(5):
            backend.put(f"data/aa/{i}", b"x" * 100)
        leftovers = [n for _, _, files in os.walk(tmp_path) for n in files if n.startswith(".tmp-")]
        assert leftovers == []

    def test_objects_are_private_to_the_owner(self, tmp_path: Path) -> None:
        backend = LocalBackend(tmp_path / "repo")
        backend.put("keys/k", b"secret")
        assert (tmp_path / "repo" / "keys" / "k").stat().st_mode & 0o077 == 0


class TestMemoryBackend(BackendContract):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        yield MemoryBackend()


class TestRetryingLocalBackend(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        yield RetryingBackend(LocalBackend(tmp_path / "repo"), RetryPolicy(attempts=2, base_delay=0.0))
