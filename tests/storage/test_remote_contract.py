"""The storage contract on every remote backend, each on a real server the tests start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lifeboat.storage.base import Backend
from tests.servers.fixtures import Server
from tests.storage.contract import BackendContract
from tests.storage.remote import fresh_url, provider


class TestS3OnMoto(BackendContract):
    """S3 semantics, conditional writes included."""

    @pytest.fixture
    def backend(self, moto_server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
        backend = provider(fresh_url("moto", moto_server, monkeypatch))
        yield backend
        backend.close()


class TestS3OnRclone(BackendContract):
    """A real on-disk S3 server that ignores If-None-Match and answers ranges with 200."""

    atomic_put_if_absent = False

    @pytest.fixture
    def backend(self, rclone_server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
        backend = provider(fresh_url("rclone", rclone_server, monkeypatch))
        yield backend
        backend.close()


class TestAzureOnAzurite(BackendContract):
    @pytest.fixture
    def backend(self, azurite_server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
        backend = provider(fresh_url("azurite", azurite_server, monkeypatch))
        yield backend
        backend.close()


class TestGcsOnEmulator(BackendContract):
    @pytest.fixture
    def backend(self, gcs_server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
        backend = provider(fresh_url("gcs", gcs_server, monkeypatch))
        yield backend
        backend.close()


class TestSftpOnSshd(BackendContract):
    @pytest.fixture
    def backend(self, sshd_server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
        backend = provider(fresh_url("sshd", sshd_server, monkeypatch))
        yield backend
        backend.close()
