"""Move tables out of and into PostgreSQL: export a table or a schema (from a live database, from
a backup as it was at a point in time, or from a pg_dump source's dump), package tables, import
CSV or a package (docs/migrate.md)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Option
from lifeboat.app.cli.pg_options import DbnameOpt, HostOpt, PortOpt, UserOpt

if TYPE_CHECKING:
    from lifeboat.operations.migrate.origin import Origin

SourceOpt = Annotated[
    str | None,
    Option("--source", "-s", help="A configured postgres source, or a pg_dump source (read from one of its dumps)."),
]
ReadDbnameOpt = Annotated[
    str | None,
    Option("--dbname", "-d", "--database", help="Database to read [env PGDATABASE]; a dump's: default its only one."),
]
TimeOpt = Annotated[
    str | None,
    Option(
        "--time",
        help="Read a backup as it was at this moment, e.g. '2026-11-30 14:03:00+00' (a scratch cluster); "
        "a pg_dump source: its newest dump taken at or before it.",
    ),
]
SnapshotOpt = Annotated[
    str | None,
    Option("--snapshot", help="Read this base backup (alone: as it was when the backup ended), or this dump."),
]
LatestOpt = Annotated[
    bool, Option("--latest", help="Read the backup as at the end of the archived WAL, or the newest dump.")
]
ScratchDirOpt = Annotated[
    str | None, Option("--scratch-dir", metavar="DIR", help="Where the scratch cluster is made (default: $TMPDIR).")
]
FormatOpt = Annotated[str, Option("--format", "-f", help="csv or parquet.")]
ForceOpt = Annotated[
    bool, Option("--force", help="Replace an existing output file (write into a non-empty directory).")
]


def export_table(
    ctx: Context,
    table: Annotated[str, Option("--table", "-t", help="The table: [SCHEMA.]TABLE.")],
    output: Annotated[str, Option("--output", "-o", help="The file to write, or - for standard output.")],
    fmt: FormatOpt = "csv",
    columns: Annotated[
        str | None, Option("--columns", help="Only these columns, in this order (comma-separated).")
    ] = None,
    source: SourceOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    user: UserOpt = None,
    dbname: ReadDbnameOpt = None,
    time: TimeOpt = None,
    snapshot: SnapshotOpt = None,
    latest: LatestOpt = False,
    scratch_dir: ScratchDirOpt = None,
    force: ForceOpt = False,
) -> None:
    """Export one table as CSV (with a header) or Parquet, from a live database, a backup at a point in time
    or a pg_dump source's dump."""
    from lifeboat.errors import UsageError
    from lifeboat.operations.migrate.export import TableExportRequest, export_table

    state: CliContext = ctx.obj
    if output == "-" and state.json:
        raise UsageError("--output - writes the table to standard output: --json cannot share it")
    origin, dbname = _origin(
        state, source, host, port, user, dbname, time, snapshot, latest, scratch_dir, tables=(table,)
    )
    request = TableExportRequest(
        table=table,
        output=output,
        format=fmt,
        columns=tuple(c.strip() for c in columns.split(",") if c.strip()) if columns else (),
        dbname=dbname,
        force=force,
    )
    stream = sys.stdout.buffer if output == "-" else None
    result = export_table(origin, request, stream=stream)
    if stream is not None:
        stream.flush()
    if state.json:
        state.output.emit_json(result.to_json())
        return
    _notes(state, result.origin)
    written = result.tables[0]
    where = "standard output" if output == "-" else output
    state.output.info(
        f"exported {written.rows} rows of {written.table} from {_from(result.origin)} to {where} "
        f"({written.format}, {written.bytes} bytes, sha256 {written.sha256[:16]}…)"
    )


def export_schema(
    ctx: Context,
    schema: Annotated[str, Option("--schema", "-n", help="The schema whose tables are exported.")],
    output: Annotated[str, Option("--output", "-o", help="The directory to write (empty or absent).")],
    fmt: FormatOpt = "csv",
    source: SourceOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    user: UserOpt = None,
    dbname: ReadDbnameOpt = None,
    time: TimeOpt = None,
    snapshot: SnapshotOpt = None,
    latest: LatestOpt = False,
    scratch_dir: ScratchDirOpt = None,
    force: ForceOpt = False,
) -> None:
    """Export every table of a schema, one file each, and schema.sql (pg_dump --schema-only)."""
    from lifeboat.operations.migrate.export import SchemaExportRequest, export_schema

    state: CliContext = ctx.obj
    origin, dbname = _origin(state, source, host, port, user, dbname, time, snapshot, latest, scratch_dir)
    result = export_schema(
        origin, SchemaExportRequest(schema=schema, directory=output, format=fmt, dbname=dbname, force=force)
    )
    if state.json:
        state.output.emit_json(result.to_json())
        return
    _notes(state, result.origin)
    out = state.output
    for written in result.tables:
        out.line(f"{written.table}: {written.rows} rows → {written.file}")
    out.line(
        f"exported {len(result.tables)} tables of schema {schema} from {_from(result.origin)} to {output} "
        f"(and {result.schema_file})"
    )


def package(
    ctx: Context,
    table: Annotated[list[str], Option("--table", "-t", help="A table to package: [SCHEMA.]TABLE (repeatable).")],
    output: Annotated[str | None, Option("--output", "-o", help="The package file to write (.tar.zst).")] = None,
    into_repository: Annotated[
        bool, Option("--into-repository", help="Store the package in the repository (a migration-package snapshot).")
    ] = False,
    source: SourceOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    user: UserOpt = None,
    dbname: ReadDbnameOpt = None,
    time: TimeOpt = None,
    snapshot: SnapshotOpt = None,
    latest: LatestOpt = False,
    scratch_dir: ScratchDirOpt = None,
    force: ForceOpt = False,
) -> None:
    """Package tables (schema, CSV data, a manifest with row counts and checksums) into a .tar.zst."""
    from lifeboat.errors import UsageError
    from lifeboat.operations.migrate.package import PackageRequest, make_package, save_package

    state: CliContext = ctx.obj
    if output is None and not into_repository:
        raise UsageError("give --output FILE.tar.zst, --into-repository, or both")
    origin, dbname = _origin(state, source, host, port, user, dbname, time, snapshot, latest, scratch_dir)
    store = None
    if into_repository:
        repo = state.open_repository()

        def store(path: str, manifest: dict[str, object]) -> str:
            name = f"migration:{source or manifest.get('database') or 'postgres'}"
            return save_package(repo, path, manifest, source=name)

    result = make_package(
        origin, PackageRequest(tables=tuple(table), output=output, dbname=dbname, force=force), store=store
    )
    if state.json:
        state.output.emit_json(result.to_json())
        return
    _notes(state, result.manifest["origin"])
    out = state.output
    for entry in result.manifest["tables"]:
        out.line(f"{entry['table']}: {entry['rows']} rows (sha256 {entry['sha256'][:16]}…)")
    if result.file:
        out.line(f"package written to {result.file} ({result.bytes} bytes) from {_from(result.manifest['origin'])}")
    if result.snapshot:
        out.line(f"package stored as snapshot {result.snapshot[:8]} (kind migration-package)")


def import_(
    ctx: Context,
    package_file: Annotated[
        str | None, Option("--package", metavar="FILE", help="A migration package (.tar.zst) to load.")
    ] = None,
    csv_file: Annotated[str | None, Option("--csv", metavar="FILE", help="A CSV file with a header to load.")] = None,
    table: Annotated[str | None, Option("--table", "-t", help="The table --csv loads into: [SCHEMA.]TABLE.")] = None,
    host: HostOpt = None,
    port: PortOpt = None,
    user: UserOpt = None,
    dbname: DbnameOpt = None,
    source: Annotated[
        str | None, Option("--source", "-s", help="A configured postgres source (connection, data directory…).")
    ] = None,
    append: Annotated[bool, Option("--append", help="Add the rows to a table that already has rows.")] = False,
    truncate: Annotated[bool, Option("--truncate", help="Empty the table first (in the same transaction).")] = False,
    create: Annotated[
        bool, Option("--create", help="Create the package's tables from its schema.sql first (same transaction).")
    ] = False,
) -> None:
    """Load a CSV file or a migration package into a database in one transaction (all or nothing)."""
    from lifeboat.app.cli.pg_options import connection, source_config
    from lifeboat.errors import UsageError
    from lifeboat.operations.migrate.endpoint import Endpoint
    from lifeboat.operations.migrate.importer import (
        CsvImportRequest,
        LoadMode,
        PackageImportRequest,
        import_csv,
        import_package,
    )

    state: CliContext = ctx.obj
    if (package_file is None) == (csv_file is None):
        raise UsageError("give --package FILE, or --csv FILE with --table")
    if csv_file is not None and not table:
        raise UsageError("--csv needs --table: the table to load into")
    if package_file is not None and table:
        raise UsageError("--table goes with --csv; a package names its tables")
    if csv_file is not None and create:
        raise UsageError("--create goes with --package (its schema.sql)")
    endpoint = Endpoint(connection(source_config(state, source), host, port, user, dbname), state.environment())
    mode = LoadMode(append=append, truncate=truncate)
    if package_file is not None:
        result = import_package(endpoint, PackageImportRequest(package_file, mode, create=create))
    else:
        assert csv_file is not None and table is not None
        result = import_csv(endpoint, CsvImportRequest(csv_file, table, mode))
    if state.json:
        state.output.emit_json(result.to_json())
        return
    for loaded in result.tables:
        state.output.line(f"{loaded.table}: {loaded.rows} rows loaded from {loaded.file}")
    state.output.line(f"imported {sum(t.rows for t in result.tables)} rows into database {result.database}")


def _origin(
    state: CliContext,
    source: str | None,
    host: str | None,
    port: int | None,
    user: str | None,
    dbname: str | None,
    time: str | None,
    snapshot: str | None,
    latest: bool,
    scratch_dir: str | None,
    *,
    tables: tuple[str, ...] = (),
) -> tuple[Origin, str | None]:
    """A live database (the connection options), a backup recovered into a scratch cluster
    (--time, --snapshot or --latest), or a pg_dump source's dump restored into one (only
    ``tables`` of it when they suffice); and the database to read in it."""
    from lifeboat.app.cli.pg_options import connection, server_command, source_config
    from lifeboat.core.basebackup import RestoreTarget
    from lifeboat.errors import UsageError
    from lifeboat.operations.backup import default_workers
    from lifeboat.operations.migrate.endpoint import Endpoint
    from lifeboat.operations.migrate.origin import BackupAtTime, LiveDatabase
    from lifeboat.operations.scratch import ScratchRequest

    if _dump_source(state, source):
        if host or port:
            raise UsageError(
                "--host and --port name a live database; a pg_dump source is read from a dump in a scratch cluster",
                hint="drop them",
            )
        return _dump_origin(state, str(source), user, dbname, time, snapshot, latest, scratch_dir, tables)
    config = source_config(state, source)
    if time is None and snapshot is None and not latest:
        if scratch_dir:
            raise UsageError("--scratch-dir goes with --time, --snapshot or --latest (reading a backup)")
        return LiveDatabase(Endpoint(connection(config, host, port, user, dbname), state.environment())), None
    if time is not None and latest:
        raise UsageError("give --time or --latest, not both")
    if host or port:
        raise UsageError(
            "--host and --port name a live database; a backup is read through a scratch cluster",
            hint="drop them, or drop --time/--snapshot/--latest to read the live database",
        )
    from lifeboat.app.cli.restore_postgres_cmd import _parse_time

    try:
        if time is not None:
            target = RestoreTarget(time=_parse_time(time))
        elif snapshot is not None and not latest:
            target = RestoreTarget(immediate=True)
        else:
            target = RestoreTarget()
    except ValueError as exc:
        raise UsageError(f"--time {time!r}: {exc}") from None
    restore_command, warnings = server_command(state, source, "wal-fetch", "%f", "%p")
    for warning in warnings:
        state.output.info(f"warning: {warning}")
    request = ScratchRequest(
        restore_command=restore_command,
        target=target,
        snapshot=snapshot,
        source=source if config is not None else None,
        parent=scratch_dir,
        user=user,
        workers=default_workers(),
    )
    state.output.info(f"recovering a scratch cluster from the backup to {target.describe()}…")
    origin = BackupAtTime(
        state.open_repository(), request, state.environment(), source=source, notify=state.output.notice
    )
    return origin, dbname or (config.dbname if config is not None else None)


def _dump_source(state: CliContext, source: str | None) -> bool:
    """Whether ``source`` names a configured pg_dump source (its repository becomes the default)."""
    config = state.config() if source else None
    found = config.sources.get(source) if config is not None and source else None
    if found is None or found.type != "pg_dump":
        return False
    if found.repository and not state.repo:
        state.repo = found.repository
    return True


def _dump_origin(
    state: CliContext,
    source: str,
    user: str | None,
    dbname: str | None,
    time: str | None,
    snapshot: str | None,
    latest: bool,
    scratch_dir: str | None,
    tables: tuple[str, ...],
) -> tuple[Origin, str]:
    """The dump of a pg_dump source named by --snapshot, --latest or --time (the newest taken at
    or before it: a dump is a point, not a window), its database restored into a scratch cluster."""
    from lifeboat.app.cli.restore_postgres_cmd import _parse_time
    from lifeboat.errors import ObjectNotFound, UsageError
    from lifeboat.operations.dump_scratch import DumpScratchRequest, dump_databases
    from lifeboat.operations.migrate.origin import DumpAtPoint
    from lifeboat.operations.read_lock import read_lock

    if user:
        raise UsageError("--user names a role of a live database; a dump is read as the scratch cluster's owner")
    chosen = [name for name, given in (("--time", time), ("--snapshot", snapshot), ("--latest", latest)) if given]
    if not chosen:
        raise UsageError(
            f"source {source} is a pg_dump source: name the dump to read",
            hint="give --latest, --snapshot ID or --time T (its newest dump taken at or before T)",
        )
    if len(chosen) > 1:
        raise UsageError(f"give one of --time, --snapshot and --latest, not {' and '.join(chosen)}")
    repo = state.open_repository()
    with read_lock(repo, use_lock=True):
        dumps = [s for s in repo.snapshots() if s.source == source and s.kind == "pg_dump"]
        picked = repo.resolve_snapshot(snapshot) if snapshot is not None else None
    dumps.sort(key=lambda s: s.time)
    if picked is not None:
        if picked.source != source or picked.kind != "pg_dump":
            raise UsageError(
                f"snapshot {picked.short_id} is not a dump of source {source} (it is a {picked.kind} snapshot "
                f"of {picked.source})",
                hint=f"'lifeboat snapshots --source {source}' lists its dumps",
            )
        how = f"dump {picked.short_id}"
    elif not dumps:
        raise ObjectNotFound(f"source {source} has no dump in the repository", hint="run 'lifeboat backup' first")
    elif time is not None:
        try:
            moment = _parse_time(time)
        except ValueError as exc:
            raise UsageError(f"--time {time!r}: {exc}") from None
        before = [s for s in dumps if s.time <= moment]
        if not before:
            raise UsageError(
                f"source {source} has no dump taken at or before {moment.isoformat()}: its first is from "
                f"{dumps[0].time.isoformat()}",
                hint="a dump is a point in time, not a window: give a --time after the first dump, or --latest",
            )
        picked = before[-1]
        how = f"the newest dump at or before {moment.isoformat()}"
    else:
        picked = dumps[-1]
        how = "the newest dump"
    held = dump_databases(picked)
    if dbname is None:
        if len(held) != 1:
            raise UsageError(
                f"dump {picked.short_id} holds {len(held)} databases: name the one to read",
                hint="give --database DB; it holds: " + (", ".join(held) or "none"),
            )
        dbname = held[0]
    elif dbname not in held:
        raise UsageError(
            f'dump {picked.short_id} holds no database "{dbname}"', hint="it holds: " + (", ".join(held) or "none")
        )
    state.output.info(
        f"restoring database {dbname} of dump {picked.short_id} (taken {picked.time.isoformat()}; {how}) "
        "into a scratch cluster…"
    )
    request = DumpScratchRequest(
        databases=(dbname,), tables=tables, parent=scratch_dir, environment=state.environment()
    )
    return DumpAtPoint(repo, picked, request, source=source, chosen_by=how), dbname


def _notes(state: CliContext, origin: dict[str, object]) -> None:
    """What the scratch cluster of a dump had to do differently (another PostgreSQL version, the
    whole database where one table could not be restored alone)."""
    notes = origin.get("notes")
    for note in notes if isinstance(notes, list) else []:
        state.output.info(f"note: {note}")


def _from(origin: dict[str, object]) -> str:
    if origin.get("type") == "dump":
        snapshot = str(origin.get("snapshot") or "")[:8]
        return f"database {origin.get('database')} of dump {snapshot} taken {origin.get('dumped_at')}"
    if origin.get("type") == "backup":
        snapshot = str(origin.get("snapshot") or "")[:8]
        return f"base backup {snapshot} recovered to {origin.get('target')}"
    return f"database {origin.get('dbname') or '(default)'}"


COMMANDS = {"export-table": export_table, "export-schema": export_schema, "package": package, "import": import_}
