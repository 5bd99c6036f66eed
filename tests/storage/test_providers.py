"""Azure, GCS and SFTP beyond the contract: what a user sees when the container is
missing, the key is wrong or the server is not the one expected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lifeboat.errors import (
    ExitCode,
    StorageAlreadyExists,
    StorageError,
    StorageNotFound,
    StoragePermissionDenied,
    TransientStorageError,
)
from lifeboat.repository.repo import Repository
from lifeboat.storage.base import temporaries
from tests.conftest import FAST_KDF, PASSPHRASE
from tests.servers.fixtures import AZURITE_KEY, Server, free_port, new_sftp_dir, sftp_url
from tests.storage.remote import fresh_url, provider, use_env


# --- Azure ------------------------------------------------------------------------------------
def test_azure_missing_container_is_named(azurite_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(monkeypatch, azurite_server)
    with pytest.raises(StorageError) as failed:
        Repository.init(provider("az://no-such-container/repo"), PASSPHRASE, kdf=FAST_KDF)
    assert "the container 'no-such-container' does not exist" in str(failed.value)
    assert failed.value.exit_code == ExitCode.STORAGE


def test_azure_wrong_account_key_is_permission_denied(azurite_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    url = fresh_url("azurite", azurite_server, monkeypatch)
    wrong = azurite_server.env["AZURE_STORAGE_CONNECTION_STRING"].replace(AZURITE_KEY, "A" * 86 + "==")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", wrong)
    with pytest.raises(StoragePermissionDenied) as refused:
        provider(url).get("config")
    assert "A" * 20 not in str(refused.value)


def test_azure_account_and_endpoint_from_options(azurite_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    url = fresh_url("azurite", azurite_server, monkeypatch)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY)
    endpoint = f"{azurite_server.endpoint}/devstoreaccount1"
    backend = provider(f"{url}?account=devstoreaccount1&endpoint={endpoint}&access_tier=Cool")
    backend.put("data/aa/pack", b"x" * 1000)
    assert backend.get("data/aa/pack") == b"x" * 1000
    assert "account devstoreaccount1" in backend.location
    assert AZURITE_KEY not in backend.location


# --- GCS -----------------------------------------------------------------------------------------
def test_gcs_missing_bucket_is_named(gcs_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(monkeypatch, gcs_server)
    with pytest.raises(StorageError) as failed:
        Repository.init(provider("gs://no-such-bucket/repo"), PASSPHRASE, kdf=FAST_KDF)
    assert "the bucket 'no-such-bucket' does not exist" in str(failed.value)


def test_gcs_put_if_absent_is_enforced_by_the_server(gcs_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = provider(fresh_url("gcs", gcs_server, monkeypatch))
    backend.put("wal/seg", b"first", if_absent=True)
    with pytest.raises(StorageAlreadyExists):
        backend.put("wal/seg", b"second", if_absent=True)
    assert backend.get("wal/seg") == b"first"


# --- SFTP ----------------------------------------------------------------------------------------
def test_sftp_leaves_no_temporary_files_and_objects_are_files(
    sshd_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = new_sftp_dir(sshd_server)
    backend = provider(sftp_url(sshd_server, path))
    for i in range(5):
        backend.put(f"data/ab/{i:064x}", os.urandom(1000))
    backend.put("config", b"header", if_absent=True)
    on_disk = sorted(str(p.relative_to(path)) for p in Path(path).rglob("*") if p.is_file())
    assert on_disk == ["config", *(f"data/ab/{i:064x}" for i in range(5))]
    assert backend.location == f"sftp://{sshd_server.extra['user']}@127.0.0.1:{sshd_server.port}{path}"


def test_sftp_finds_and_removes_temporary_files_a_killed_writer_left(sshd_server: Server) -> None:
    path = new_sftp_dir(sshd_server)
    backend = provider(sftp_url(sshd_server, path))  # wrapped (retry): found through the wrappers
    backend.put("data/ab/" + "1" * 64, b"pack")
    (Path(path) / "data" / "ab" / ".tmp-0011223344556677").write_bytes(b"half a pack")
    leftovers = temporaries(backend)
    assert leftovers is not None
    assert [(t.name, t.size) for t in leftovers.temporaries()] == [("data/ab/.tmp-0011223344556677", 11)]
    assert [i.name for i in backend.list("data/")] == ["data/ab/" + "1" * 64]
    with pytest.raises(ValueError):
        leftovers.remove_temporary("data/ab/" + "1" * 64)  # never an object
    leftovers.remove_temporary("data/ab/.tmp-0011223344556677")
    leftovers.remove_temporary("data/ab/.tmp-0011223344556677")  # gone already: fine
    assert list(leftovers.temporaries()) == []
    assert backend.get("data/ab/" + "1" * 64) == b"pack"


def test_sftp_refuses_a_server_whose_host_key_is_unknown(
    sshd_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    url = sftp_url(sshd_server, new_sftp_dir(sshd_server)).replace(sshd_server.extra["known_hosts"], str(empty))
    with pytest.raises(StorageError) as refused:
        provider(url).get("config")
    assert not isinstance(refused.value, TransientStorageError)
    assert "host key is not trusted" in str(refused.value)
    assert "known_hosts" in refused.value.hint


def test_sftp_refuses_a_key_the_server_does_not_know(sshd_server: Server, tmp_path: Path) -> None:
    import subprocess

    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    url = sftp_url(sshd_server, new_sftp_dir(sshd_server)).replace(sshd_server.extra["identity"], str(stranger))
    with pytest.raises(StoragePermissionDenied) as refused:
        provider(url).get("config")
    assert "refused the login" in str(refused.value)


def test_sftp_unreachable_server_is_transient(sshd_server: Server) -> None:
    url = sftp_url(sshd_server, "/srv/x").replace(f":{sshd_server.port}/", f":{free_port()}/")
    with pytest.raises(TransientStorageError):
        provider(url + "&connect_timeout=3s").get("config")


def test_sftp_missing_object_and_directory(sshd_server: Server) -> None:
    backend = provider(sftp_url(sshd_server, new_sftp_dir(sshd_server)))
    assert list(backend.list("")) == []
    with pytest.raises(StorageNotFound):
        backend.stat("data")
