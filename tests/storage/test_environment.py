"""Storage reads no environment of its own: whoever opens a backend passes ``env``, and the
credentials, emulator and login name a provider uses come from there — here with the
process's own environment emptied of them, so nothing can be found anywhere else."""

from __future__ import annotations

import os
import pwd

import pytest

from lifeboat.errors import StoragePermissionDenied, UsageError
from lifeboat.storage.registry import open_backend, open_provider
from tests.servers.fixtures import AZURITE_KEY, Server, new_bucket, new_container, new_gcs_bucket
from tests.storage.remote import s3_url


def _clear(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    for name in server.env:
        monkeypatch.delenv(name, raising=False)


def _round_trip(url: str, env: dict[str, str]) -> None:
    backend = open_backend(url, env=env)
    try:
        backend.put("keys/probe", b"explicit")
        assert backend.get("keys/probe") == b"explicit"
    finally:
        backend.close()


def test_s3_takes_its_keys_from_the_env_it_is_given(moto_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    _clear(monkeypatch, moto_server)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")  # boto3's chain finds nothing
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    url = s3_url(moto_server, new_bucket(moto_server))
    _round_trip(url, dict(moto_server.env))
    with pytest.raises(StoragePermissionDenied) as refused:
        open_backend(url, env={})
    assert "AWS_ACCESS_KEY_ID" in refused.value.hint


def test_azure_takes_its_account_and_key_from_the_env_it_is_given(
    azurite_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear(monkeypatch, azurite_server)
    for name in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_ACCOUNT"):
        monkeypatch.delenv(name, raising=False)
    url = f"az://{new_container(azurite_server)}/repo"
    _round_trip(url, dict(azurite_server.env))  # the connection string
    endpoint = f"{azurite_server.endpoint}/devstoreaccount1"
    _round_trip(  # the account and key as separate variables
        f"{url}?endpoint={endpoint}",
        {"AZURE_STORAGE_ACCOUNT_NAME": "devstoreaccount1", "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY},
    )
    with pytest.raises(UsageError, match="no Azure storage account given"):
        open_backend(url, env={})


def test_gcs_finds_the_emulator_in_the_env_it_is_given(gcs_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    _clear(monkeypatch, gcs_server)
    _round_trip(f"gs://{new_gcs_bucket(gcs_server)}/repo", dict(gcs_server.env))


def test_sftp_logs_in_as_the_user_the_env_names() -> None:
    url = "sftp://nas.example/srv/lifeboat"
    for env, user in (
        ({"LOGNAME": "carol", "USER": "dave"}, "carol"),
        ({"USER": "dave"}, "dave"),
        ({}, pwd.getpwuid(os.getuid()).pw_name),
    ):
        backend = open_provider(url, env=env)  # nothing is contacted before the first request
        try:
            assert backend.location == f"sftp://{user}@nas.example/srv/lifeboat"
        finally:
            backend.close()
