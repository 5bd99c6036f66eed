"""The source registry: every kind the configuration accepts resolves to its implementation,
and an unknown kind is a configuration error naming the key (sources/registry.py)."""

from __future__ import annotations

import importlib
import typing

import pytest

from lifeboat.config import model
from lifeboat.config.loader import parse_config
from lifeboat.config.resolve import source_kind
from lifeboat.errors import ConfigError, ExitCode, NotSupported
from lifeboat.sources.base import IntoDirectory, IntoProgram, IntoServer, RestoreInto, SourceKind
from lifeboat.sources.registry import KINDS, kind_names
from lifeboat.sources.registry import source_kind as registered

CONFIGURED = """
repositories: {main: {url: /srv/repo}}
sources:
  uploads: {type: files, paths: [/srv/uploads]}
  untyped: {paths: [/srv/other]}
  db: {type: postgres, data_directory: /var/lib/postgresql/15/main}
  dump: {type: command, command: [pg_dump, -Fc, appdb]}
  cache: {type: redis, port: 6380}
  app-db: {type: sqlite, paths: [/srv/app/app.db]}
  directory: {type: ldap, config_dir: /etc/ldap/slapd.d}
  etc: {type: config, paths: [/etc/app]}
"""


def union_members() -> dict[str, type]:
    """The configuration classes of the configuration's source union, by their tag."""
    union = typing.get_args(model.SourceConfig)[0]
    members: dict[str, type] = {}
    for member in typing.get_args(union):
        cls, tag = typing.get_args(member)
        members[tag.tag] = cls
    return members


def test_each_configured_source_resolves_to_its_kind() -> None:
    config = parse_config(CONFIGURED)
    resolved = {name: source_kind(config, name) for name in config.sources}
    assert {name: kind.name for name, kind in resolved.items()} == {
        "uploads": "files",
        "untyped": "files",
        "db": "postgres",
        "dump": "command",
        "cache": "redis",
        "app-db": "sqlite",
        "directory": "ldap",
        "etc": "config",
    }
    assert all(isinstance(kind, SourceKind) for kind in resolved.values())


def test_the_registry_and_the_configuration_know_the_same_kinds() -> None:
    members = union_members()
    assert set(members) == set(kind_names()) == set(KINDS)
    for name in kind_names():
        kind = registered(name)
        assert kind.name == name
        module, _, attribute = kind.config_model.partition(":")
        assert getattr(importlib.import_module(module), attribute) is members[name]
        assert kind.snapshot_kinds, name


def test_an_unknown_kind_in_the_configuration_names_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("sources: {db: {type: oracle, host: x}}")
    assert caught.value.exit_code == ExitCode.USAGE
    assert f"sources.db.type: unknown source type 'oracle' (known: {', '.join(kind_names())})" in caught.value.message
    assert "_source_type" not in caught.value.message


def test_an_unknown_kind_asked_of_the_registry_names_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        registered("mongodb", key="sources.cache.type")
    assert caught.value.message.startswith("sources.cache.type: unknown source type 'mongodb'")


@pytest.mark.parametrize(
    ("kind", "into", "allowed"),
    [
        ("files", IntoDirectory("/tmp/x"), True),
        ("files", IntoProgram(("cat",)), False),
        ("command", IntoProgram(("cat",)), True),
        ("command", IntoDirectory("/tmp/x"), False),
        ("command", IntoServer(), False),
        ("postgres", IntoServer(), False),
        ("postgres", IntoDirectory("/tmp/x"), False),  # restored by 'restore postgres' (operations/pitr.py)
        ("redis", IntoServer({"directory": "/tmp/x"}), True),  # a stopped server's directory
        ("redis", IntoProgram(("cat",)), False),
        ("sqlite", IntoDirectory("/tmp/x"), True),
        ("sqlite", IntoServer({"path": "/tmp/x.db"}), True),  # one database to a file
        ("sqlite", IntoProgram(("cat",)), False),
        ("ldap", IntoServer(), True),  # 'restore ldap': slapadd into a stopped slapd
        ("ldap", IntoDirectory("/tmp/x"), False),
        ("config", IntoDirectory("/tmp/x"), True),
    ],
)
def test_a_kind_refuses_a_destination_it_does_not_restore_into(kind: str, into: object, allowed: bool) -> None:
    chosen = registered(kind)
    wanted = {IntoDirectory: RestoreInto.DIRECTORY, IntoProgram: RestoreInto.PROGRAM, IntoServer: RestoreInto.SERVER}
    assert (wanted[type(into)] in chosen.restores_into) is allowed
    if allowed:
        chosen.check_restore(into)  # type: ignore[arg-type]
    else:
        with pytest.raises(NotSupported, match=f"a {kind} source (cannot restore|is restored by point-in-time)"):
            chosen.check_restore(into)  # type: ignore[arg-type]


def test_a_kind_without_scratch_instances_says_so() -> None:
    for name in kind_names():
        if type(registered(name)).scratch is not SourceKind.scratch:
            continue  # redis: a redis-server on the restored RDB (tests/logical/test_redis.py)
        with pytest.raises(NotSupported, match="scratch instance"):
            registered(name).scratch(None, None, "/tmp")  # type: ignore[arg-type]
