"""The configuration file: valid files load; every mistake names its key."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from lifeboat.config.loader import load_config, parse_config
from lifeboat.errors import ConfigError

GOOD = """
version: 1
repositories:
  main:
    url: /srv/backup/repo
    password_file: /etc/lifeboat/pass
default_repository: main
sources:
  uploads:
    type: files
    paths: [/srv/app/uploads]
    exclude: ["*.tmp"]
    retention: {keep_daily: 7, keep_weekly: 4}
retention:
  keep_last: 3
  keep_within: 2d
"""


def test_a_good_file_loads_with_its_retention() -> None:
    config = parse_config(GOOD)
    assert config.repository(None) is not None
    name, repo = config.repository(None)  # type: ignore[misc]
    assert (name, repo.url) == ("main", "/srv/backup/repo")
    uploads = config.retention_for("uploads")
    assert uploads is not None and uploads.keep_daily == 7
    other = config.retention_for("elsewhere")
    assert other is not None and other.keep_within == timedelta(days=2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("repositories: {main: {url: /x, pasword_file: a}}", "repositories.main.pasword_file: unknown key"),
        ("sources: {web: {paths: [rel]}}", "sources.web.paths: path 'rel' must be absolute"),
        ("retention: {keep_daily: x}", "retention.keep_daily"),
        ("retention: {keep_within: 7q}", "retention.keep_within: invalid duration"),
        ("retention: {recovery_window: 2 weeks}", "retention.recovery_window: invalid duration"),
        ("sources: {web: {paths: [/a], repository: nope}}", "names 'nope', which is not in repositories"),
        ("default_repository: nope", "default_repository names 'nope'"),
        ("version: 2", "version"),
        ("a: [", "not valid YAML at line 1"),
        ("- a\n- b", "must be a mapping"),
        ("repositories: {main: {url: /x, password_file: a, password_command: b}}", "not both"),
    ],
)
def test_mistakes_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, origin="lifeboat.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("lifeboat.yaml: ")
    assert "\n" not in str(caught.value)


def test_durations_and_sizes_may_be_bare_numbers() -> None:
    config = parse_config(
        "repositories: {main: {url: /r, lock_wait: 30}}\n"
        "retention: {keep_within: 600}\n"
        "sources: {db: {type: postgres, data_directory: /pg, archive_wait: 120, archive_queue_max: 1048576}}\n"
    )
    assert config.repositories["main"].lock_wait == "30"
    policy = config.retention_for("elsewhere")
    assert policy is not None and policy.keep_within == timedelta(minutes=10)


def test_a_recovery_window_sits_in_the_same_policy_as_the_gfs_rules() -> None:
    config = parse_config(
        "sources: {db: {type: postgres, data_directory: /pg, retention: {recovery_window: 14d, keep_daily: 7}}}\n"
    )
    policy = config.retention_for("db")
    assert policy is not None and policy.recovery_window == timedelta(days=14) and policy.keep_daily == 7
    assert policy.point_in_time_window == timedelta(days=14)
    assert policy.describe() == "keep daily 7; recovery window 14d"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: " + "[" * 3000 + "]" * 3000, "nested too deeply"),
        ("retention: {keep_within: 2020-13-45}", "not valid YAML: a value cannot be read (month must be in 1..12)"),
        ("retention: {keep_last: !!int 'zz'}", "not valid YAML: a value cannot be read"),
        ("sources: {s: {paths: [/x], include: ['[abc']}}", "sources.s.include: invalid pattern '[abc'"),
        ("repositories: {main: {url: /r, lock_wait: true}}", "repositories.main.lock_wait"),
        ("".join(f"k{i}: 1\n" for i in range(20)), "; and 15 more"),
    ],
)
def test_hostile_files_are_configuration_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(text)


def test_a_binary_or_oversized_file_is_a_configuration_error(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x7fELF" + bytes(range(256)))
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(binary)
    with pytest.raises(ConfigError, match="larger than 4 MiB"):
        load_config("/dev/zero")
