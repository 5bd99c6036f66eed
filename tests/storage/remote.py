"""Opening backends on the test servers: URLs, credentials in the environment, raw providers."""

from __future__ import annotations

import os
from collections.abc import Mapping

import pytest

from lifeboat.storage.base import Backend
from lifeboat.storage.registry import open_provider
from tests.servers.fixtures import (
    Server,
    new_bucket,
    new_container,
    new_gcs_bucket,
    new_sftp_dir,
    sftp_url,
)


def provider(url: str, env: Mapping[str, str] | None = None) -> Backend:
    """The provider's backend itself, without the retry wrapper (to test its own contract);
    credentials from ``env``, by default this process's environment (see :func:`use_env`)."""
    return open_provider(url, env=os.environ if env is None else env)


def use_env(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)


def s3_url(server: Server, bucket: str, prefix: str = "repo", **options: str) -> str:
    query = "&".join([f"endpoint={server.endpoint}", *(f"{k}={v}" for k, v in options.items())])
    return f"s3://{bucket}/{prefix}?{query}"


def fresh_url(kind: str, server: Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A URL naming a new, empty location on ``server`` (credentials set in the environment)."""
    use_env(monkeypatch, server)
    if kind == "moto":
        return s3_url(server, new_bucket(server))
    if kind == "rclone":
        return s3_url(server, new_bucket(server), conditional_writes="false")
    if kind == "azurite":
        return f"az://{new_container(server)}/repo"
    if kind == "gcs":
        return f"gs://{new_gcs_bucket(server)}/repo"
    if kind == "sshd":
        return sftp_url(server, new_sftp_dir(server))
    raise ValueError(kind)
