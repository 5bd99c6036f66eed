"""The ``pg_dump`` kind: a cluster's databases (pg_dump) and globals (pg_dumpall) in one
snapshot, restored with pg_restore and psql (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lifeboat.errors import LifeboatError, NotSupported, UsageError, option
from lifeboat.sources.base import (
    BackupContext,
    BackupOptions,
    IntoServer,
    Produced,
    RestoreContext,
    RestoreDestination,
    RestoreInto,
    SourceKind,
    Verification,
    describe_into,
)
from lifeboat.sources.pgdump.layout import GLOBALS_FILE, RECORD_KEY, recorded

if TYPE_CHECKING:
    from lifeboat.config.model import PgDumpSourceConfig
    from lifeboat.core.snapshot import Snapshot
    from lifeboat.sources.pgdump.backup import DumpRequest
    from lifeboat.sources.pgdump.restore import PgDumpRestore, RestorePlan
    from lifeboat.sources.plan import RestorePlan as PlannedRestore
    from lifeboat.sources.tools.pgclient import Server

SNAPSHOT_KIND = "pg_dump"
_GLOBALS_MARK = b"PostgreSQL database cluster dump"


def server_of(
    config: PgDumpSourceConfig | None,
    environment: Mapping[str, str] | None,
    overrides: Mapping[str, Any] | None = None,
) -> Server:
    """The connection: explicit values over the configured source over libpq's defaults
    (PG* variables, the service file). The environment carries the password, never argv."""
    from lifeboat.sources.command.spec import program_environment
    from lifeboat.sources.tools.pgclient import Server

    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    env = program_environment(environment, dict(config.env) if config is not None else {})
    if config is not None and config.service:
        env["PGSERVICE"] = config.service
    if config is not None and config.passfile:
        env["PGPASSFILE"] = config.passfile
    return Server(
        host=given.get("host") or (config.host if config is not None else None),
        port=given.get("port") or (config.port if config is not None else None),
        user=given.get("user") or (config.user if config is not None else None),
        dbname=given.get("dbname") or (config.dbname if config is not None else None) or "postgres",
        env=env,
    )


class PgDumpSource(SourceKind):
    name = "pg_dump"
    config_model = "lifeboat.config.model:PgDumpSourceConfig"
    snapshot_kinds = (SNAPSHOT_KIND,)
    restores_into = frozenset({RestoreInto.SERVER})
    runs_programs = True

    def check_restore(self, into: RestoreDestination) -> None:
        if not isinstance(into, IntoServer):
            raise NotSupported(
                "a pg_dump snapshot is restored into a PostgreSQL server or as SQL, by its own command",
                hint="'lifeboat restore pg-dump SNAPSHOT --source NAME --database DB' loads a database; "
                "'lifeboat dump SNAPSHOT DB.dump' writes its archive to standard output",
            )

    def label(self, request: DumpRequest) -> str:
        return f"dumping the databases of {request.server.describe()}"

    def request(self, config: PgDumpSourceConfig | None, options: BackupOptions) -> DumpRequest:
        from lifeboat.sources.pgdump.backup import DumpRequest

        if config is None:
            raise UsageError(
                "a pg_dump backup needs a configured source",
                hint="add a source with 'type: pg_dump' to the configuration (docs/configuration.md)",
            )
        return DumpRequest(
            server=server_of(config, options.environment),
            databases=tuple(config.databases) if config.databases is not None else None,
            exclude=tuple(config.exclude_databases),
            source=options.source,
            role_passwords=config.role_passwords,
            jobs=config.jobs,
            temp_dir=config.temp_directory,
        )

    def backup(self, ctx: BackupContext, request: DumpRequest) -> Produced:
        """Dump the globals and each database into the write session; any failure: no snapshot."""
        from lifeboat.sources.files.archiver import ArchiveResult
        from lifeboat.sources.pgdump.backup import dump_cluster
        from lifeboat.sources.tools.pgclient import server_major

        dumped = dump_cluster(ctx, request)
        files = 1 + len(dumped.databases)
        record = {
            "server_version": dumped.server_version,
            "server_major": server_major(dumped.server_version_num),
            "pg_dump_version": dumped.pg_dump_version,
            "role_passwords": request.role_passwords,
            "globals": {"file": GLOBALS_FILE, "bytes": dumped.globals_bytes},
            "databases": [db.to_json() for db in dumped.databases],
        }
        return Produced(
            tree=dumped.tree,
            source=request.source or "pg_dump",
            kind=SNAPSHOT_KIND,
            paths=(request.server.describe(),),
            archive=ArchiveResult(tree=dumped.tree, files_new=files, bytes_total=dumped.bytes_total),
            summary={"databases": len(dumped.databases)},
            extra={RECORD_KEY: record},
            record=dumped,
        )

    def restore(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> PgDumpRestore:
        """Restore the globals and databases ``into.settings`` name (see :func:`plan_of`)."""
        from lifeboat.sources.pgdump.restore import restore_snapshot

        self.check_restore(into)
        assert isinstance(into, IntoServer)
        return restore_snapshot(ctx, snapshot, plan_of(ctx, into.settings))

    def plan(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> PlannedRestore:
        """The archives pg_restore would load (or write as SQL) and where; the restore's own
        checks first: the databases and options, a SQL file that exists, and — asking the
        server, read only — a database that exists (without ``force``)."""
        from lifeboat.sources.pgdump.restore import choose, refuse_existing, target_server
        from lifeboat.sources.plan import PlannedWrite, judge_space, new_plan, path_state

        self.check_restore(into)
        assert isinstance(into, IntoServer)
        wanted = plan_of(ctx, into.settings)
        chosen = choose(ctx, snapshot, wanted)
        server = target_server(snapshot, wanted)
        planned = new_plan(self.name, snapshot, describe_into(into))
        if wanted.sql is not None:
            name = chosen.names[0]
            where = "standard output" if wanted.sql == "-" else wanted.sql
            on_disk = wanted.sql != "-"
            state = path_state(wanted.sql) if on_disk else ""
            planned.writes.append(
                PlannedWrite(f"SQL of database {name}", where, chosen.nodes[name].size, 1, on_disk=on_disk, state=state)
            )
            judge_space(planned, force=wanted.force)
            return planned
        if chosen.globals_node is not None:
            planned.writes.append(
                PlannedWrite(
                    "globals (roles, tablespaces)", server.describe(), chosen.globals_node.size, 1, on_disk=False
                )
            )
        for name in chosen.names:
            into_name = wanted.rename or name
            planned.writes.append(
                PlannedWrite(
                    f"database {name}" + (f" as {into_name}" if into_name != name else ""),
                    server.describe(),
                    chosen.nodes[name].size,
                    1,
                    on_disk=False,
                )
            )
        planned.attempt(
            lambda: refuse_existing(server, chosen, wanted), "no database restored into exists on the server"
        )
        planned.unchecked.append("the server's free space (the archives' bytes are the dumps', not the tables')")
        return planned

    def verify(self, ctx: RestoreContext, snapshot: Snapshot) -> Verification:
        """Each archive read to its end by ``pg_restore`` (a damaged or cut archive fails), and
        the globals file is the SQL pg_dumpall writes."""
        from lifeboat.sources.command.spec import program_environment
        from lifeboat.sources.pgdump.archive import run_on_archive
        from lifeboat.sources.tools.pgclient import check_argv

        problems: list[str] = []
        dumped, globals_file = recorded(snapshot.extra)
        if not dumped:
            problems.append("the snapshot records no database")
        tree = ctx.loader.load_tree(snapshot.tree)
        major = str(snapshot.extra.get(RECORD_KEY, {}).get("server_major") or "") or None
        globals_node = tree.get(globals_file or GLOBALS_FILE)
        if globals_node is None:
            problems.append(f"the snapshot has no {GLOBALS_FILE}")
        else:
            try:
                head = b""
                for data in ctx.loader.load_blobs(globals_node.content[:1]):
                    head = data[:4096]
                if globals_node.size == 0 or _GLOBALS_MARK not in head:
                    problems.append(f"{globals_node.name}: not the SQL pg_dumpall writes for the globals")
            except LifeboatError as exc:
                problems.append(f"{globals_node.name}: {exc.message}")
        config = ctx.config if getattr(ctx.config, "type", None) == SNAPSHOT_KIND else None
        env = program_environment(ctx.environment)
        for item in dumped:
            ctx.events.check()
            node = tree.get(item.file)
            if node is None:
                problems.append(f"database {item.name}: the snapshot has no {item.file}")
                continue
            try:
                run_on_archive(
                    ctx.loader,
                    ctx.events,
                    node,
                    lambda path: [*check_argv(major), *([path] if path else [])],
                    env,
                    temp_dir=config.temp_directory if config is not None else None,
                    show_output=False,
                    may_stop_early=False,  # a check reads the whole archive
                )
            except LifeboatError as exc:
                problems.append(f"database {item.name} ({item.file}): {exc.message}")
        return Verification(
            checked=f"{len(dumped)} archive(s) read whole by pg_restore, and the globals SQL",
            problems=tuple(problems),
        )

    def describe(self, snapshot: Snapshot) -> list[str]:
        from lifeboat.core.units import format_bytes

        record = snapshot.extra.get(RECORD_KEY, {})
        if not isinstance(record, Mapping):
            return []
        dumped, _ = recorded(snapshot.extra)
        listed = ", ".join(f"{db.name} ({format_bytes(db.bytes)})" for db in dumped)
        return [
            f"PostgreSQL {record.get('server_version', '?')}, {record.get('pg_dump_version', 'pg_dump')}",
            f"databases: {listed or 'none'}; globals: {GLOBALS_FILE}",
        ]


def plan_of(ctx: RestoreContext, settings: Mapping[str, Any]) -> RestorePlan:
    """A restore plan from the destination's settings (keys as the options are named):
    ``database`` (list), ``all``, ``globals``, ``as``, ``host``/``port``/``user``/``dbname``
    of the target (default: the configured source's), ``clean``, ``create``, ``force``,
    ``schema``/``table`` (lists), ``data_only``, ``schema_only``, ``jobs``, ``sql``."""
    from lifeboat.sources.pgdump.restore import RestorePlan

    config = ctx.config if getattr(ctx.config, "type", None) == SNAPSHOT_KIND else None
    server = server_of(config, ctx.environment, {key: settings.get(key) for key in ("host", "port", "user", "dbname")})
    jobs = settings.get("jobs")
    if jobs is not None and int(jobs) < 1:
        raise UsageError(f"{option('jobs')} must be at least 1")
    rename = settings.get("as")
    if rename is not None and (not rename or "\0" in rename):
        raise UsageError(f"{option('as')} needs a database name")
    return RestorePlan(
        server=server,
        databases=tuple(settings.get("database") or ()),
        all_databases=bool(settings.get("all")),
        globals=bool(settings.get("globals")),
        rename=rename,
        clean=bool(settings.get("clean")),
        create=bool(settings.get("create")),
        force=bool(settings.get("force")),
        schemas=tuple(settings.get("schema") or ()),
        tables=tuple(settings.get("table") or ()),
        data_only=bool(settings.get("data_only")),
        schema_only=bool(settings.get("schema_only")),
        jobs=int(jobs) if jobs is not None else None,
        sql=settings.get("sql"),
        temp_dir=config.temp_directory if config is not None else None,
    )
