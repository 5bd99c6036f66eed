"""Every kind of source by name: the configuration loader, the generic commands and (later)
the daemon find a kind here.

A kind is named by where it lives, and imported only when it is used, so reading a
configuration or printing ``--help`` never loads PostgreSQL's or a program runner's code.
Adding a kind: its package under ``sources/`` with a :class:`~lifeboat.sources.base.SourceKind`,
its configuration class in ``config/model.py``, one line here, its docs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from lifeboat.errors import ConfigError

if TYPE_CHECKING:
    from lifeboat.sources.base import SourceKind

# kind → "module:class" of its SourceKind. The configuration's ``type:`` key names the kind.
KINDS: dict[str, str] = {
    "files": "lifeboat.sources.files.kind:FilesSource",
    "postgres": "lifeboat.sources.postgres.kind:PostgresSource",
    "command": "lifeboat.sources.command.kind:CommandSource",
    "redis": "lifeboat.sources.redis.kind:RedisSource",
    "sqlite": "lifeboat.sources.sqlite.kind:SqliteSource",
    "mariadb": "lifeboat.sources.mariadb.kind:MariadbSource",
    "ldap": "lifeboat.sources.ldap.kind:LdapSource",
    "config": "lifeboat.sources.config.kind:ConfigSource",
    "pg_dump": "lifeboat.sources.pgdump.kind:PgDumpSource",
}

DEFAULT_KIND = "files"  # a configured source without ``type:``


def kind_names() -> tuple[str, ...]:
    return tuple(KINDS)


def source_kind(name: str, *, key: str = "type") -> SourceKind:
    """The kind called ``name``; an unknown name is a configuration error naming ``key``."""
    target = KINDS.get(name)
    if target is None:
        raise ConfigError(f"{key}: unknown source type {name!r} (known: {', '.join(KINDS)})")
    module, _, attribute = target.partition(":")
    kind: SourceKind = getattr(importlib.import_module(module), attribute)()
    return kind


def kind_of_snapshot(snapshot_kind: str) -> SourceKind | None:
    """The source kind whose backups make snapshots of ``snapshot_kind`` (None: a stream of stdin…)."""
    for name in KINDS:
        kind = source_kind(name)
        if snapshot_kind in kind.snapshot_kinds:
            return kind
    return None
