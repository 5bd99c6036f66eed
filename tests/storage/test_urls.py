"""The repository URL grammar and storage options: what is accepted, what is refused and
how the refusal reads (no servers needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.errors import ConfigError, UsageError
from lifeboat.storage.azure import AzureSettings, parse_connection_string
from lifeboat.storage.gcs import GcsSettings
from lifeboat.storage.local import LocalBackend
from lifeboat.storage.registry import open_backend, scheme_of, storage_url
from lifeboat.storage.retry import RetryingBackend
from lifeboat.storage.s3 import S3Settings
from lifeboat.storage.sftp import SftpSettings
from lifeboat.storage.url import parse_url


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("s3://bucket/prefix", "s3"),
        ("gs://bucket", "gs"),
        ("az://container/p", "az"),
        ("sftp://host/srv", "sftp"),
        ("/srv/backup", "file"),
        ("relative/dir", "file"),
        ("file:///srv/backup", "file"),
        ("memory:", "memory"),
        ("C:/windows/path", "file"),
    ],
)
def test_schemes_are_recognised(url: str, scheme: str) -> None:
    assert scheme_of(url) == scheme


def test_s3_url_with_options() -> None:
    settings = S3Settings.from_url(
        parse_url(
            "s3://my-bucket/hosts/db1?endpoint=https://minio.example:9000&region=eu-west-1&sse=aws:kms"
            "&sse_kms_key_id=alias/backup&storage_class=STANDARD_IA&connections=8&part_size=16MiB&timeout=2min"
        )
    )
    assert (settings.bucket, settings.prefix) == ("my-bucket", "hosts/db1")
    assert settings.endpoint == "https://minio.example:9000"
    assert settings.path_style  # the default with a custom endpoint
    assert (settings.region, settings.sse, settings.sse_kms_key_id) == ("eu-west-1", "aws:kms", "alias/backup")
    assert settings.tuning.connections == 8
    assert settings.tuning.part_size == 16 * 1024 * 1024
    assert settings.tuning.request_timeout == 120
    assert settings.location == "s3://my-bucket/hosts/db1 at https://minio.example:9000"


def test_aws_defaults_to_virtual_host_addressing_and_no_lock() -> None:
    settings = S3Settings.from_url(parse_url("s3://bucket"))
    assert not settings.path_style
    assert settings.lock_mode is None
    assert settings.location == "s3://bucket"


def test_object_lock_options() -> None:
    settings = S3Settings.from_url(parse_url("s3://b/p?object_lock=Governance&object_lock_period=90d"))
    assert settings.lock_mode == "GOVERNANCE"
    assert settings.lock_period.days == 90
    assert settings.lock_exempt == ("locks/",)
    with pytest.raises(UsageError, match="object_lock is not"):
        S3Settings.from_url(parse_url("s3://b/p?object_lock_period=90d"))
    with pytest.raises(UsageError, match="one of compliance, governance"):
        S3Settings.from_url(parse_url("s3://b/p?object_lock=forever"))


def test_credentials_in_a_url_are_refused_without_being_echoed() -> None:
    with pytest.raises(UsageError) as refused:
        parse_url("sftp://backup:hunter2@host/srv")
    assert "hunter2" not in refused.value.message
    assert "environment" in refused.value.hint
    with pytest.raises(UsageError, match="credentials"):
        S3Settings.from_url(parse_url("s3://b/p?endpoint=https://key:secret@minio:9000"))


def test_unknown_options_are_named_with_the_known_ones() -> None:
    with pytest.raises(UsageError) as refused:
        S3Settings.from_url(parse_url("s3://b/p?regoin=eu-west-1"))
    assert "regoin" in refused.value.message
    assert "region" in refused.value.hint


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("connections=0", "from 1 to 256"),
        ("connections=many", "whole number"),
        ("part_size=1MiB", "size from"),
        ("timeout=soon", "duration"),
        ("conditional_writes=maybe", "true or false"),
        ("endpoint=minio:9000", "http:// or https://"),
        ("region=a&region=b", "given twice"),
    ],
)
def test_malformed_option_values_are_refused(query: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        S3Settings.from_url(parse_url(f"s3://b/p?{query}"))


def test_configured_options_override_the_url() -> None:
    url = storage_url("s3://b/p?connections=2&region=x", {"connections": 9, "conditional_writes": False})
    settings = S3Settings.from_url(url)
    assert settings.tuning.connections == 9
    assert settings.region == "x"
    assert settings.conditional_writes is False


def test_retries_are_a_generic_option(tmp_path: Path) -> None:
    backend = open_backend(str(tmp_path / "repo"), options={"retries": 2, "retry_max_delay": "3s"}, env={})
    assert isinstance(backend, RetryingBackend)
    assert backend._policy.attempts == 3
    assert backend._policy.max_delay == 3
    assert isinstance(backend.inner, LocalBackend)
    with pytest.raises(UsageError, match="unknown file storage option"):
        open_backend(str(tmp_path / "repo"), options={"connections": 4}, env={})


def test_a_local_path_is_taken_literally(tmp_path: Path) -> None:
    odd = tmp_path / "repo?x=1"
    assert storage_url(str(odd)).path == str(odd)


def test_sftp_paths_are_absolute_or_home_relative() -> None:
    absolute = SftpSettings.from_url(parse_url("sftp://backup@nas.example:2222/srv/lifeboat"))
    assert (absolute.user, absolute.host, absolute.port, absolute.path) == (
        "backup",
        "nas.example",
        2222,
        "/srv/lifeboat",
    )
    assert absolute.location == "sftp://backup@nas.example:2222/srv/lifeboat"
    home = SftpSettings.from_url(parse_url("sftp://backup@nas.example/~/lifeboat?identity=/k1,/k2"))
    assert home.path == "lifeboat"
    assert home.identities == ("/k1", "/k2")
    with pytest.raises(UsageError, match="names no directory"):
        SftpSettings.from_url(parse_url("sftp://nas.example"))


def test_azure_and_gcs_urls() -> None:
    azure = AzureSettings.from_url(parse_url("az://backups/db1?account=acme&access_tier=cool"))
    assert (azure.container, azure.prefix, azure.account, azure.access_tier) == ("backups", "db1", "acme", "Cool")
    gcs = GcsSettings.from_url(parse_url("gs://bucket/db1?project=acme-prod&storage_class=NEARLINE"))
    assert (gcs.bucket, gcs.prefix, gcs.project, gcs.storage_class) == ("bucket", "db1", "acme-prod", "NEARLINE")
    assert gcs.location == "gs://bucket/db1"


def test_azure_connection_strings_are_parsed_with_keys_containing_equals() -> None:
    fields = parse_connection_string(
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=abc/def==;EndpointSuffix=core.windows.net"
    )
    assert fields["AccountName"] == "acme"
    assert fields["AccountKey"] == "abc/def=="
    with pytest.raises(ConfigError):
        parse_connection_string("AccountName")


def test_the_configuration_file_checks_storage_options_up_front(tmp_path: Path) -> None:
    from lifeboat.config.loader import load_config

    config = tmp_path / "lifeboat.yaml"
    config.write_text(
        "version: 1\nrepositories:\n  main: {url: /srv/lifeboat}\n"
        "  offsite:\n    url: s3://acme/db1\n    follows: main\n    options: {region: eu-west-1, connections: 8}\n"
    )
    loaded = load_config(str(config))
    assert loaded.repositories["offsite"].follows == "main"
    assert loaded.repositories["offsite"].options == {"region": "eu-west-1", "connections": 8}
    config.write_text("version: 1\nrepositories:\n  offsite:\n    url: s3://acme/db1\n    options: {regoin: x}\n")
    with pytest.raises(ConfigError, match=r"repositories\.offsite.*unknown s3 storage option\(s\): regoin"):
        load_config(str(config))
    config.write_text("version: 1\nrepositories:\n  a: {url: /a, follows: b}\n")
    with pytest.raises(ConfigError, match=r"follows names 'b'"):
        load_config(str(config))
