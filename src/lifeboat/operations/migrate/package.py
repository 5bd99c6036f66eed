"""A migration package: some tables of a database, ready to load elsewhere.

A ``tar.zst`` holding, in this order, ``manifest.json`` (the tables, their columns, row counts
and the sha256 of each data file, where and when the rows came from, the Lifeboat version),
``schema.sql`` (``pg_dump --schema-only`` of the tables, in the same snapshot as the data) and
``data/SCHEMA.TABLE.csv`` (``COPY ... WITH (FORMAT csv, HEADER)``). Each table's CSV is
written to a temporary file first (so the manifest, first in the archive, knows its
checksum), never held in memory. ``--into-repository`` stores the package as a snapshot of
kind ``migration-package`` (one file, like ``backup --stdin``).
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat import __version__
from lifeboat.errors import IntegrityError, UsageError, option
from lifeboat.operations.migrate.catalog import find_table
from lifeboat.operations.migrate.export import TableFile, export_snapshot, reading, write_table
from lifeboat.operations.migrate.files import check_new_file, new_file, safe_file_name
from lifeboat.operations.migrate.origin import Origin

if TYPE_CHECKING:
    from lifeboat.repository.repo import Repository

FORMAT = "lifeboat-migration-package"
VERSION = 1
MANIFEST = "manifest.json"
SCHEMA = "schema.sql"
DATA_DIR = "data"
SNAPSHOT_KIND = "migration-package"
PACKAGE_FILE = "package.tar.zst"  # the file's name in a migration-package snapshot


@dataclass(frozen=True)
class PackageRequest:
    tables: tuple[str, ...]
    output: str | None = None  # the tar.zst file (None: only into the repository)
    dbname: str | None = None
    force: bool = False


@dataclass
class PackageResult:
    manifest: dict[str, Any]
    file: str | None
    bytes: int
    snapshot: str | None = None  # the migration-package snapshot, when stored in a repository

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "bytes": self.bytes, "snapshot": self.snapshot, "manifest": self.manifest}


def build_package(
    origin: Origin,
    request: PackageRequest,
    output: str,
    *,
    check: Callable[[], None] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> PackageResult:
    """Write the package of ``request.tables`` from ``origin`` to ``output``."""
    import zstandard

    from lifeboat.sources.tools.pg_schema import dump_schema

    if not request.tables:
        raise UsageError(f"name at least one table with {option('table')}")
    clock = clock or (lambda: datetime.now(UTC))
    with origin.open(request.dbname) as endpoint, reading(endpoint) as conn:
        tables = [find_table(conn, name) for name in request.tables]
        names = [t.qualified for t in tables]
        if len(set(names)) != len(names):
            raise UsageError(f"a table is named twice: {', '.join(names)}")
        snapshot = export_snapshot(conn)
        ddl = dump_schema(
            endpoint.connection,
            tables=[t.quoted for t in tables],
            snapshot=snapshot,
            environment=endpoint.environment,
            major=endpoint.major,
        )
        entries: list[TableFile] = []
        with tempfile.TemporaryDirectory(prefix=".lifeboat-package-", dir=Path(output).parent) as work:
            for table in tables:
                member = f"{DATA_DIR}/{safe_file_name(table.qualified)}.csv"
                with open(Path(work) / f"{len(entries)}.csv", "wb") as out:
                    written = write_table(conn, table, table.columns, "csv", out, member, check=check)
                entries.append(written)
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "lifeboat_version": __version__,
                "created": clock().isoformat(timespec="seconds"),
                "origin": origin.describe(),
                "database": conn.info.dbname,
                "schema_file": SCHEMA,
                "tables": [t.to_json() for t in entries],
            }
            with new_file(output) as raw:
                with (
                    zstandard.ZstdCompressor(level=6).stream_writer(raw, closefd=False) as packed,
                    tarfile.open(fileobj=packed, mode="w|") as tar,
                ):
                    _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
                    _add_bytes(tar, SCHEMA, ddl.encode("utf-8"))
                    for i, entry in enumerate(entries):
                        tar.add(Path(work) / f"{i}.csv", arcname=entry.file, recursive=False)
                size = raw.tell()
    return PackageResult(manifest, output, size)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def make_package(
    origin: Origin,
    request: PackageRequest,
    *,
    check: Callable[[], None] | None = None,
    store: Callable[[str, dict[str, Any]], str] | None = None,
) -> PackageResult:
    """Build the package into ``request.output``, and/or hand it to ``store`` (path, manifest →
    snapshot id) to keep it in a repository."""
    if request.output is None and store is None:
        raise UsageError(f"give {option('output')} or {option('into_repository')}")
    if request.output is not None:
        check_new_file(request.output, force=request.force)
        result = build_package(origin, request, request.output, check=check)
        if store is not None:
            result.snapshot = store(request.output, result.manifest)
        return result
    assert store is not None
    with tempfile.TemporaryDirectory(prefix=".lifeboat-package-") as work:
        path = str(Path(work) / PACKAGE_FILE)
        result = build_package(origin, request, path, check=check)
        result.snapshot = store(path, result.manifest)
        result.file = None
        return result


# --- reading a package ------------------------------------------------------------------------


@dataclass
class OpenedPackage:
    """A package unpacked into a private directory, its manifest read and every data file checked."""

    manifest: dict[str, Any]
    directory: Path
    schema: str

    def data_file(self, entry: dict[str, Any]) -> Path:
        return self.directory / str(entry["file"])


@contextmanager
def open_package(path: str, *, work_parent: str | None = None) -> Iterator[OpenedPackage]:
    """Unpack ``path`` and check it against its manifest (sha256 and rows of each data file)
    before anything is loaded; IntegrityError names the first file that disagrees."""
    import zstandard

    with tempfile.TemporaryDirectory(prefix=".lifeboat-import-", dir=work_parent) as work:
        root = Path(work)
        try:
            with (
                open(path, "rb") as raw,
                zstandard.ZstdDecompressor().stream_reader(raw) as unpacked,
                tarfile.open(fileobj=unpacked, mode="r|") as tar,
            ):
                for member in tar:
                    _extract(tar, member, root)
        except (tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
            raise IntegrityError(f"{path} is not a readable migration package: {exc}") from None
        manifest = _manifest(root, path)
        for entry in manifest["tables"]:
            check_data_file(root / entry["file"], entry, path)
        schema = (root / SCHEMA).read_text("utf-8") if (root / SCHEMA).is_file() else ""
        yield OpenedPackage(manifest, root, schema)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path) -> None:
    name = Path(member.name)
    if name.is_absolute() or ".." in name.parts or not member.isfile():
        raise IntegrityError(f"a migration package holds an unexpected entry {member.name!r}")
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    assert source is not None
    with open(target, "wb") as out:
        while block := source.read(1 << 20):
            out.write(block)


def _manifest(root: Path, path: str) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((root / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{path} has no readable {MANIFEST}: {exc}") from None
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("tables"), list):
        raise IntegrityError(f"{path} is not a migration package ({MANIFEST} has format {manifest.get('format')!r})")
    if int(manifest.get("version", 0)) > VERSION:
        raise IntegrityError(
            f"{path} is a version {manifest['version']} package; this Lifeboat reads version {VERSION}",
            hint="import it with a newer Lifeboat",
        )
    return manifest


def check_data_file(file: Path, entry: dict[str, Any], package: str) -> None:
    """The data file holds what the manifest says: its sha256 and its number of rows."""
    import hashlib

    if not file.is_file():
        raise IntegrityError(f"{package}: {entry['file']} (table {entry['table']}) is missing")
    digest = hashlib.sha256()
    with open(file, "rb") as data:
        while block := data.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != entry["sha256"]:
        raise IntegrityError(
            f"{package}: {entry['file']} does not match its checksum in the manifest "
            f"(sha256 {digest.hexdigest()[:16]}…, expected {str(entry['sha256'])[:16]}…); nothing was imported",
            hint="the package is damaged or was altered: make it again",
        )
    rows = count_csv_rows(file)
    if rows != int(entry["rows"]):
        raise IntegrityError(
            f"{package}: {entry['file']} holds {rows} rows, the manifest says {entry['rows']}; nothing was imported"
        )


def count_csv_rows(file: Path) -> int:
    """Records in a CSV file with a header (a quoted value may span lines)."""
    import csv

    with open(file, encoding="utf-8", errors="replace", newline="") as text:
        return max(sum(1 for _ in csv.reader(text)) - 1, 0)


def save_package(repo: Repository, path: str, manifest: dict[str, Any], *, source: str) -> str:
    """Store the package file ``path`` as a snapshot of kind ``migration-package``; returns its id."""
    from lifeboat.operations.snapshots import SourceBackup, run_backup
    from lifeboat.sources.stream import StreamRequest, StreamSource

    summary = {
        "tables": [{"table": t["table"], "rows": t["rows"], "sha256": t["sha256"]} for t in manifest["tables"]],
        "origin": manifest["origin"],
        "database": manifest.get("database"),
    }
    with open(path, "rb") as stream:
        request = StreamRequest(
            stream=stream, name=PACKAGE_FILE, source=source, kind=SNAPSHOT_KIND, extra={"migration": summary}
        )
        result = run_backup(repo, SourceBackup(StreamSource(), request, label="storing the migration package"))
    return result.snapshot.id
