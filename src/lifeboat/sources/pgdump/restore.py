"""Restoring a pg_dump snapshot: the globals through ``psql``, a database through ``pg_restore``
into a server (under its own or a new name, whole or a schema or some tables), or a database
as an SQL script.

A stored archive is streamed, verified blob by blob, into pg_restore's standard input: nothing
is copied to local disk — except with ``jobs``, since a parallel pg_restore needs a seekable
file, and for a directory archive (a backup with ``jobs``): the archive is then written to a
temporary place first, as large as the archive (:mod:`lifeboat.sources.pgdump.archive`). A
restore never replaces a database that exists unless forced, and never reports success if a
program failed: pg_restore runs with ``--exit-on-error`` (and in one transaction unless
parallel or creating the database).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Node
from lifeboat.errors import IntegrityError, LifeboatError, RestoreRefused, SourceError, UsageError, option
from lifeboat.sources.base import RestoreContext
from lifeboat.sources.command.restore import consume
from lifeboat.sources.command.spec import ProgramSpec
from lifeboat.sources.pgdump.archive import run_on_archive
from lifeboat.sources.pgdump.layout import recorded
from lifeboat.sources.tools.pgclient import Selection, Server, last_line

# The errors of a globals script that only say the object is there already (the cluster's own
# superuser, a role restored before): expected when loading the globals into a live cluster.
_ALREADY_THERE = re.compile(r'ERROR:\s+(role|tablespace) "[^"]*" already exists')


@dataclass(frozen=True)
class RestorePlan:
    """What one ``restore pg-dump`` does."""

    server: Server  # the target cluster (unused with ``sql``)
    databases: tuple[str, ...] = ()
    all_databases: bool = False
    globals: bool = False
    rename: str | None = None  # the one database's new name
    clean: bool = False
    create: bool = False
    force: bool = False
    schemas: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    data_only: bool = False
    schema_only: bool = False
    jobs: int | None = None
    sql: str | None = None  # write SQL to this file ("-": standard output) instead of loading a server
    temp_dir: str | None = None  # where a parallel restore's archive is written


@dataclass
class PgDumpRestore:
    """What was restored where."""

    snapshot: Snapshot
    sql: str | None = None
    restored: list[dict[str, Any]] = field(default_factory=list)
    globals_skipped: int = 0  # globals statements that found their object there already

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.id,
            "sql": self.sql,
            "restored": self.restored,
            "globals_already_present": self.globals_skipped,
        }

    def failure(self) -> LifeboatError | None:
        return None

    def describe(self) -> str:
        parts = []
        for item in self.restored:
            if item["what"] == "globals":
                parts.append("the globals (roles, tablespaces)")
            elif item["database"] != item["into"]:
                parts.append(f"database {item['database']} as {item['into']}")
            else:
                parts.append(f"database {item['database']}")
        where = f"as SQL into {self.sql if self.sql != '-' else 'standard output'}" if self.sql else "into the server"
        there = f" ({self.globals_skipped} role(s) or tablespace(s) were there already)" if self.globals_skipped else ""
        return f"restored {', '.join(parts)} of snapshot {self.snapshot.short_id} {where}{there}"


@dataclass(frozen=True)
class Chosen:
    """What a restore plan names in the snapshot: the databases, their archives, the globals."""

    names: list[str]
    nodes: dict[str, Node]
    globals_node: Node | None


def choose(ctx: RestoreContext, snapshot: Snapshot, plan: RestorePlan) -> Chosen:
    """The checks a restore makes before it loads anything (shared with ``restore --plan``):
    the databases named are in the snapshot, the options fit; UsageError otherwise."""
    if snapshot.kind != "pg_dump":
        raise UsageError(
            f"snapshot {snapshot.short_id} is a {snapshot.kind} snapshot, not a pg_dump one",
            hint="name a snapshot of a pg_dump source ('lifeboat snapshots' shows each one's kind)",
        )
    dumped, globals_file = recorded(snapshot.extra)
    files = {item.name: item.file for item in dumped}
    names = sorted(files) if plan.all_databases else list(dict.fromkeys(plan.databases))
    unknown = [name for name in names if name not in files]
    if unknown:
        raise UsageError(
            f'snapshot {snapshot.short_id} holds no database "{unknown[0]}"',
            hint="it holds: " + (", ".join(sorted(files)) or "none"),
        )
    if not names and not plan.globals:
        raise UsageError(
            "nothing to restore",
            hint=f"name a database ({option('database')}), {option('all')} of them, or {option('globals')}; "
            "it holds: " + (", ".join(sorted(files)) or "none"),
        )
    _check_plan(plan, names)
    tree = ctx.loader.load_tree(snapshot.tree)
    nodes: dict[str, Node] = {}
    for name in names:
        node = tree.get(files[name])
        if node is None:
            raise IntegrityError(f"snapshot {snapshot.short_id} records database {name} but has no {files[name]}")
        nodes[name] = node
    globals_node = tree.get(globals_file) if plan.globals and globals_file else None
    if plan.globals and globals_node is None:
        raise IntegrityError(f"snapshot {snapshot.short_id} has no globals file")
    return Chosen(names, nodes, globals_node)


def restore_snapshot(ctx: RestoreContext, snapshot: Snapshot, plan: RestorePlan) -> PgDumpRestore:
    """Carry out ``plan``; raises (UsageError before anything is loaded, SourceError after) on a failure."""
    chosen = choose(ctx, snapshot, plan)
    names, nodes = chosen.names, chosen.nodes
    done = PgDumpRestore(snapshot, sql=plan.sql)
    server = target_server(snapshot, plan)
    selection = Selection(plan.schemas, plan.tables, plan.clean, plan.data_only, plan.schema_only)
    if plan.sql is not None:
        name = names[0]
        output = plan.sql

        def sql_argv(path: str | None) -> list[str]:
            return server.restore_argv(selection, output=output, archive=path)

        run_on_archive(
            ctx.loader, ctx.events, nodes[name], sql_argv, server.program_env(),
            temp_dir=plan.temp_dir, to_stdout=output == "-",
        )  # fmt: skip
        done.restored.append({"what": "database", "database": name, "into": name, "bytes": nodes[name].size})
        return done
    targets = {name: (plan.rename or name) for name in names}
    _refuse_existing(server, targets, plan)
    if chosen.globals_node is not None:
        node = chosen.globals_node
        done.globals_skipped = _load_globals(ctx, server, node)
        done.restored.append({"what": "globals", "database": "", "into": server.dbname, "bytes": node.size})
    for name in names:
        ctx.events.check()
        target = targets[name]
        if not plan.create:  # else pg_restore creates it (by the archive's name) from the maintenance database
            if not server.exists(target):
                server.create_database(target)
            if not plan.data_only:
                for schema in plan.schemas:
                    server.create_schema(target, schema)

        def load_argv(path: str | None, target: str = target) -> list[str]:
            return server.restore_argv(
                selection,
                database=target,
                create=plan.create,
                single_transaction=plan.jobs is None and not plan.create,
                jobs=plan.jobs,
                archive=path,
            )

        with ctx.events.phase("restore", f"restoring database {name}"):
            run_on_archive(
                ctx.loader, ctx.events, nodes[name], load_argv, server.program_env(),
                seekable=plan.jobs is not None, temp_dir=plan.temp_dir,
            )  # fmt: skip
        done.restored.append({"what": "database", "database": name, "into": target, "bytes": nodes[name].size})
    return done


def target_server(snapshot: Snapshot, plan: RestorePlan) -> Server:
    """The server restored into, its client programs of the dumped server's major version."""
    major = str(snapshot.extra.get("pg_dump", {}).get("server_major") or "") or None
    return plan.server.with_major(major) if plan.server.major is None else plan.server


def refuse_existing(server: Server, chosen: Chosen, plan: RestorePlan) -> None:
    """Refused before anything is loaded: a database that exists, without ``force``."""
    _refuse_existing(server, {name: (plan.rename or name) for name in chosen.names}, plan)


def _check_plan(plan: RestorePlan, names: list[str]) -> None:
    if plan.rename is not None and len(names) != 1:
        raise UsageError(f"{option('as')} renames one database", hint=f"name exactly one {option('database')}")
    if plan.rename is not None and plan.create:
        raise UsageError(
            f"{option('create')} creates the database under its archived name: it cannot go with {option('as')}",
            hint=f"leave out {option('create')}: a database that does not exist is created empty first",
        )
    if plan.sql is not None and (len(names) != 1 or plan.globals):
        raise UsageError(
            f"{option('sql')} writes one database's SQL",
            hint=f"name exactly one {option('database')}; 'lifeboat dump SNAPSHOT globals.sql' writes the globals",
        )
    if plan.create and plan.schemas:
        raise UsageError(
            f"{option('schema')} goes without {option('create')}",
            hint="pg_restore restores a schema's objects, not the schema: Lifeboat creates it in a database it made",
        )
    if plan.sql not in (None, "-") and not plan.force and os.path.lexists(plan.sql):
        raise UsageError(
            f"{plan.sql} exists", hint=f"{option('force')} overwrites it; or name a new file for {option('sql')}"
        )
    if plan.data_only and plan.schema_only:
        raise UsageError(f"{option('data_only')} and {option('schema_only')} exclude each other")
    if plan.jobs is not None and plan.sql is not None:
        raise UsageError(f"{option('jobs')} goes with a restore into a server, not with {option('sql')}")


def _refuse_existing(server: Server, targets: dict[str, str], plan: RestorePlan) -> None:
    """No database that exists is restored into unless forced: checked for all before loading any."""
    if plan.force:
        return
    for target in targets.values():
        if server.exists(target):
            raise RestoreRefused(
                f'database "{target}" already exists on {server.describe()}',
                hint=f"{option('force')} restores into it ({option('clean')} drops its objects first); "
                f"{option('as')} NEWNAME restores under another name",
            )


def _load_globals(ctx: RestoreContext, server: Server, node: Node) -> int:
    """Run the globals script with psql; errors saying a role or tablespace exists already are
    counted (the cluster has its own superuser), any other error fails the restore."""
    lines: list[str] = []
    pending = bytearray()

    def collect(piece: bytes) -> None:
        pending.extend(piece)
        *whole, rest = pending.split(b"\n")
        lines.extend(line.decode(errors="replace") for line in whole)
        pending[:] = rest
        ctx.events.program_output(piece)

    argv = server.script_argv()
    with ctx.events.phase("restore", "restoring the globals"):
        consume(
            ctx.loader,
            node,
            ProgramSpec(tuple(argv), server.program_env()),
            progress=ctx.events.progress,
            on_stderr=collect,
            stdout_to_stderr=True,
            cancel=ctx.events.check,
        )
    lines.append(pending.decode(errors="replace"))
    errors = [line for line in lines if "ERROR:" in line]
    failed = [line for line in errors if not _ALREADY_THERE.search(line)]
    if failed:
        raise SourceError(
            f"psql reported {len(failed)} error(s) loading the globals: {last_line(failed[0].encode())}",
            hint="fix what psql reports (roles and tablespaces that exist already are not errors) and run it again",
        )
    return len(errors)
