"""Backing up slapd's databases: one ``slapcat`` per database, its LDIF stored as it comes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lifeboat.core.tree import Node
from lifeboat.errors import SourceError
from lifeboat.sources.base import BackupContext
from lifeboat.sources.ldap.layout import Database, ServerLayout, layout_of, layout_of_conf
from lifeboat.sources.ldap.ldif import EntryCounter
from lifeboat.sources.stream import StoredStream, store_chunks, stream_node
from lifeboat.sources.tools.program import Producer
from lifeboat.sources.tools.slapd import SlapdConfig, read_output


def file_name(number: int) -> str:
    return f"db-{number}.ldif"


@dataclass(frozen=True)
class DumpedDatabase:
    """One database's LDIF, stored (not yet committed), and what it holds."""

    database: Database
    stored: StoredStream
    entries: int

    def node(self) -> Node:
        # private (0600): the configuration holds password hashes (olcRootPW)
        return stream_node(file_name(self.database.number), self.stored)

    def to_json(self) -> dict[str, object]:
        return {
            **self.database.to_json(),
            "file": file_name(self.database.number),
            "entries": self.entries,
            "bytes": self.stored.size,
        }


def server_layout(server: SlapdConfig, env: Mapping[str, str] | None) -> ServerLayout:
    """The databases slapd's configuration lists: ``slapcat -n 0`` of a cn=config directory,
    or the slapd.conf file read (slapcat has no database 0 to dump from one)."""
    if server.config_file:
        try:
            with open(server.config_file, encoding="utf-8", errors="replace") as handle:
                return layout_of_conf(handle.read())
        except OSError as exc:
            raise SourceError(
                f"cannot read slapd's configuration {server.config_file}: {exc.strerror}",
                hint="check the source's config_file; no snapshot was saved",
            ) from None
    return layout_of(read_output(server.slapcat(0), env))


def dumpable(layout: ServerLayout, server: SlapdConfig) -> list[Database]:
    """What a backup takes by default: the configuration (of a cn=config directory) and every data database."""
    config = [layout.database(0) or Database(0, "config")] if server.config_dir else []
    return [*config, *layout.data_databases()]


def choose(layout: ServerLayout, server: SlapdConfig, wanted: tuple[int, ...] | None) -> list[Database]:
    """The databases to dump: those ``wanted``, else :func:`dumpable`."""
    known = dumpable(layout, server)
    if wanted is None:
        return known
    chosen: list[Database] = []
    for number in sorted(set(wanted)):
        found = next((d for d in known if d.number == number), None)
        if found is None:
            where = server.where
            listed = ", ".join(str(d.number) for d in known)
            raise SourceError(
                f"slapd's configuration in {where} has no database {number} to dump (it has {listed})",
                hint="fix the source's databases; no snapshot was saved",
            )
        chosen.append(found)
    return chosen


def dump(ctx: BackupContext, server: SlapdConfig, database: Database, env: Mapping[str, str] | None) -> DumpedDatabase:
    """``slapcat -n N`` stored as it comes, its entries counted on the way; SourceError unless it exits 0."""
    counter = EntryCounter()
    with Producer(server.slapcat(database.number), env=env, on_stderr=ctx.events.program_output) as running:
        stored = store_chunks(
            ctx.saver,
            ctx.chunker.chunks(running.stdout),
            ctx.events.progress,
            cancel=ctx.events.check,
            on_chunk=counter.feed,
        )
        running.finish()
    counter.finish()
    if not counter.ok:
        raise SourceError(
            f"slapcat wrote something that is not LDIF for database {database.number}: {counter.problems[0]}",
            hint="no snapshot was saved; check slapd's configuration and slapcat's messages",
        )
    ctx.events.progress.file_done()
    return DumpedDatabase(database, stored, counter.entries)
