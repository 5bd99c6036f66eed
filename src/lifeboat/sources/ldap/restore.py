"""Loading stored LDIF back into a stopped slapd with ``slapadd``, configuration first.

``slapadd`` writes the database files directly, so slapd must be stopped (its pid file,
``olcPidFile``, names a live process: refused, whatever ``force`` says). A database that
already holds entries, or a configuration directory that is not empty, is refused unless
``force``; then it is emptied first (the ``-F`` directory's contents; a ``mdb`` database's
``data.mdb`` and ``lock.mdb``). Files are made by ``slapadd`` run as the server's user, so
slapd can open them; directories Lifeboat creates are given to that user.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Node
from lifeboat.errors import NotSupported, RestoreRefused, SourceError, UsageError, option
from lifeboat.sources.base import RestoreContext
from lifeboat.sources.command.restore import consume
from lifeboat.sources.command.spec import ProgramSpec
from lifeboat.sources.ldap.backup import server_layout
from lifeboat.sources.ldap.layout import ServerLayout, layout_of, running_pid
from lifeboat.sources.tools.slapd import SlapdConfig, read_output

MDB_FILES = ("data.mdb", "lock.mdb")


@dataclass(frozen=True)
class LoadedDatabase:
    number: int
    suffix: str
    entries: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "suffix": self.suffix, "entries": self.entries, "bytes": self.bytes}


@dataclass
class LdapRestore:
    """The databases of a snapshot loaded into slapd's configuration at ``where``."""

    snapshot: Snapshot
    where: str
    loaded: list[LoadedDatabase] = field(default_factory=list)
    emptied: list[str] = field(default_factory=list)  # what force emptied first

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.id,
            "config": self.where,
            "databases": [d.to_json() for d in self.loaded],
            "emptied": self.emptied,
        }

    def failure(self) -> None:
        return None

    def describe(self) -> str:
        what = ", ".join(f"{d.number} ({d.suffix or 'cn=config'}: {d.entries} entries)" for d in self.loaded)
        return f"loaded database {what} of snapshot {self.snapshot.short_id} into {self.where}; start slapd now"


@dataclass(frozen=True)
class LdapLoad:
    """What to load: ``databases`` (by number, configuration first) of the snapshot into ``server``."""

    server: SlapdConfig
    databases: tuple[int, ...]
    force: bool = False
    quick: bool = False  # slapadd -q: faster, no consistency checks while loading
    env: Mapping[str, str] | None = field(default=None, repr=False)


def preflight(
    ctx: RestoreContext, files: Mapping[int, Node], request: LdapLoad
) -> tuple[ServerLayout | None, ServerLayout | None]:
    """What stops a load before it writes (a restore plan runs it too): the configuration
    only into a cn=config directory, never under a running slapd, a non-empty configuration
    directory only with ``force``. Returns (the stored configuration's layout, the current one)."""
    server = request.server
    if 0 in request.databases and not server.config_dir:
        raise NotSupported(
            "the configuration (database 0) restores into a cn=config directory only",
            hint=f"give {option('config_dir')}; a slapd.conf file is restored by a config or files source",
        )
    stored_config = _stored_layout(ctx, files)
    current = _current_layout(server, request.env)
    _refuse_running(current, stored_config)
    if 0 in request.databases and not request.force:
        _refuse_config_dir(server.config_dir or "")
    return stored_config, current


def load(ctx: RestoreContext, snapshot: Snapshot, files: Mapping[int, Node], request: LdapLoad) -> LdapRestore:
    server = request.server
    stored_config, current = preflight(ctx, files, request)
    done = LdapRestore(snapshot, server.where)
    for number in request.databases:
        ctx.events.check()
        node = files[number]
        if number == 0:
            _prepare_config_dir(server, request.force, done)
            _make_directories(server, stored_config)  # slapadd checks that olcDbDirectory exists
        else:
            current = current or _current_layout(server, request.env)
            suffix = str(_recorded(snapshot, number).get("suffix", ""))
            _prepare_database(server, current, suffix, number, request, done)
        consume(
            ctx.loader,
            node,
            ProgramSpec(tuple(server.slapadd(number, quick=request.quick)), request.env),
            progress=ctx.events.progress,
            on_stderr=ctx.events.program_output,
            stdout_to_stderr=True,
            cancel=ctx.events.check,
        )
        if number == 0:
            current = _current_layout(server, request.env)
            _make_directories(server, current)
        recorded = _recorded(snapshot, number)
        done.loaded.append(
            LoadedDatabase(number, str(recorded.get("suffix", "")), int(recorded.get("entries", 0)), node.size)
        )
    return done


def _recorded(snapshot: Snapshot, number: int) -> dict[str, Any]:
    for entry in snapshot.extra.get("ldap", {}).get("databases", []):
        if isinstance(entry, dict) and entry.get("number") == number:
            return entry
    return {}


def _stored_layout(ctx: RestoreContext, files: Mapping[int, Node]) -> ServerLayout | None:
    node = files.get(0)
    if node is None:
        return None
    return layout_of(b"".join(ctx.loader.load_blobs(node.content)))


def _current_layout(server: SlapdConfig, env: Mapping[str, str] | None) -> ServerLayout | None:
    """The layout of the configuration in place, or None when there is none (an empty -F directory)."""
    if server.config_dir and (not os.path.isdir(server.config_dir) or not os.listdir(server.config_dir)):
        return None
    if server.config_file and not os.path.exists(server.config_file):
        return None
    try:
        return server_layout(server, env)
    except SourceError:
        return None


def _refuse_running(current: ServerLayout | None, stored: ServerLayout | None) -> None:
    for layout in (current, stored):
        if layout is None:
            continue
        pid = running_pid(layout.pid_file)
        if pid is not None:
            raise RestoreRefused(
                f"slapd is running (pid {pid}, from {layout.pid_file})",
                hint="stop slapd first: slapadd writes the database files directly; start it once the restore is done",
            )


def _refuse_config_dir(directory: str) -> None:
    if os.path.isdir(directory) and os.listdir(directory):
        raise RestoreRefused(
            f"the configuration directory {directory} is not empty",
            hint=f"restore the configuration into an empty directory, or pass {option('force')} to empty it first",
        )


def _prepare_config_dir(server: SlapdConfig, force: bool, done: LdapRestore) -> None:
    directory = server.config_dir or ""
    if os.path.isdir(directory) and os.listdir(directory):
        if not force:
            _refuse_config_dir(directory)
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        done.emptied.append(directory)
    _make_directory(server, directory)
    owner = server.uid_gid()
    if owner is not None:
        os.chown(directory, *owner)  # slapadd, run as the server's user, writes the configuration into it


def _prepare_database(
    server: SlapdConfig,
    current: ServerLayout | None,
    suffix: str,  # the snapshot's
    number: int,
    request: LdapLoad,
    done: LdapRestore,
) -> None:
    database = current.database(number) if current is not None else None
    if database is None:
        raise UsageError(
            f"slapd's configuration in {server.where} has no database {number}",
            hint="restore the configuration first (database 0, into an empty directory), then the data",
        )
    if suffix and suffix.lower() != database.suffix.lower():
        raise UsageError(
            f"database {number} is {database.suffix!r} in {server.where}, but {suffix!r} in the snapshot",
            hint="restore into a configuration whose database of that number has the snapshot's suffix",
        )
    if not database.directory:
        return
    if not os.path.isdir(database.directory):
        _make_directory(server, database.directory)
        return
    if not read_output(server.slapcat(number), request.env, limit=1):
        return  # no entries (or no database files yet)
    if not request.force:
        raise RestoreRefused(
            f"database {number} ({database.suffix}) already holds entries in {database.directory}",
            hint=f"pass {option('force')} to empty it first (its data.mdb and lock.mdb are removed)",
        )
    if database.backend != "mdb":
        raise NotSupported(f"emptying a {database.backend} database is not supported; empty it by hand first")
    for name in MDB_FILES:
        path = os.path.join(database.directory, name)
        if os.path.exists(path):
            os.unlink(path)
            done.emptied.append(path)


def _make_directories(server: SlapdConfig, layout: ServerLayout | None) -> None:
    """Neither slapd nor slapadd creates a database's directory: make those a configuration names."""
    for database in layout.data_databases() if layout is not None else ():
        if database.directory and not os.path.isdir(database.directory):
            _make_directory(server, database.directory)


def _make_directory(server: SlapdConfig, directory: str) -> None:
    if os.path.isdir(directory):
        return
    os.makedirs(directory, mode=0o750)
    owner = server.uid_gid()
    if owner is not None:
        os.chown(directory, *owner)
