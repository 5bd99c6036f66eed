"""The ``sqlite`` kind: each database of ``paths`` copied online, checked and stored under its
own path; restored to a file or below a directory, checked again (see the package's docstring)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Node, NodeType
from lifeboat.errors import (
    IntegrityError,
    LifeboatError,
    ObjectNotFound,
    RestoreRefused,
    SourceError,
    UsageError,
    option,
)
from lifeboat.sources.base import (
    BackupContext,
    BackupOptions,
    IntoDirectory,
    IntoServer,
    Produced,
    RestoreContext,
    RestoreDestination,
    RestoreInto,
    SourceKind,
    Verification,
    describe_into,
)

if TYPE_CHECKING:
    from lifeboat.config.model import SqliteSourceConfig
    from lifeboat.core.protocols import BlobLoader, BlobSaver
    from lifeboat.sources.plan import RestorePlan

SNAPSHOT_KIND = "sqlite"


@dataclass(frozen=True)
class SqliteRequest:
    """Copy these databases (absolute, normalised paths)."""

    paths: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class RestoredDatabase:
    database: str  # its path when it was backed up
    path: str  # where it was written
    size: int
    problems: tuple[str, ...]  # PRAGMA integrity_check of the restored file

    def to_json(self) -> dict[str, Any]:
        return {"database": self.database, "path": self.path, "bytes": self.size, "integrity": list(self.problems)}


@dataclass(frozen=True)
class SqliteRestore:
    """The databases written, each checked with PRAGMA integrity_check."""

    snapshot: Snapshot
    databases: tuple[RestoredDatabase, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"snapshot": self.snapshot.id, "databases": [db.to_json() for db in self.databases]}

    def failure(self) -> LifeboatError | None:
        bad = [db for db in self.databases if db.problems]
        if not bad:
            return None
        return IntegrityError(
            f"{bad[0].path} fails PRAGMA integrity_check after the restore: {'; '.join(bad[0].problems)}"
            + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
            hint="the snapshot's copy passed the check when it was made: check the target's disk",
        )

    def describe(self) -> str:
        from lifeboat.core.units import format_bytes

        done = ", ".join(f"{db.database} → {db.path} ({format_bytes(db.size)})" for db in self.databases)
        checked = "integrity ok" if self.failure() is None else "integrity check FAILED"
        count = len(self.databases)
        return f"restored {count} SQLite database(s) of snapshot {self.snapshot.short_id}: {done}; {checked}"


class SqliteSource(SourceKind):
    name = "sqlite"
    config_model = "lifeboat.config.model:SqliteSourceConfig"
    snapshot_kinds = (SNAPSHOT_KIND,)
    # below a directory (each database under its path), or one database to a file (settings: path,
    # database, force): a database file is what SQLite has for a server
    restores_into = frozenset({RestoreInto.DIRECTORY, RestoreInto.SERVER})

    def label(self, request: SqliteRequest) -> str:
        return f"backing up {len(request.paths)} SQLite database(s)"

    def request(self, config: SqliteSourceConfig | None, options: BackupOptions) -> SqliteRequest:
        paths = tuple(options.settings.get("paths") or (config.paths if config is not None else ()))
        if not paths:
            raise UsageError(f"{option('paths')} is required", hint="the SQLite database files to back up")
        normalised: list[str] = []
        for path in paths:
            if not path.startswith("/"):
                raise UsageError(f"path {path!r} must be absolute")
            clean = os.path.normpath(path)
            if clean not in normalised:
                normalised.append(clean)
        return SqliteRequest(tuple(normalised), options.source)

    def check(self, request: SqliteRequest) -> None:
        for path in request.paths:
            if not os.path.isfile(path):
                what = "does not exist" if not os.path.lexists(path) else "is not a regular file"
                raise SourceError(f"{path} {what}", hint="no snapshot was saved; fix the source's paths")

    def backup(self, ctx: BackupContext, request: SqliteRequest) -> Produced:
        """Copy, check and store each database in turn; the first that fails stops the backup
        (SourceError, no snapshot). The copies live in a private temporary directory."""
        from lifeboat.sources.files.archiver import ArchiveResult
        from lifeboat.sources.sqlite.copy import online_copy
        from lifeboat.sources.stream import store_stream

        self.check(request)
        files: dict[str, Node] = {}
        copies: list[dict[str, Any]] = []
        total = 0
        with tempfile.TemporaryDirectory(prefix="lifeboat-sqlite-") as private:  # 0700
            for number, path in enumerate(request.paths):
                ctx.events.check()
                copy_path = os.path.join(private, f"{number}.db")
                copied = online_copy(path, copy_path)
                with open(copy_path, "rb") as copy:
                    stored = store_stream(ctx.saver, ctx.chunker, copy, ctx.events.progress, cancel=ctx.events.check)
                info = os.stat(path)
                files[path] = Node(
                    name=os.path.basename(path),
                    type=NodeType.FILE,
                    mode=info.st_mode & 0o7777,
                    uid=info.st_uid,
                    gid=info.st_gid,
                    mtime_ns=info.st_mtime_ns,
                    atime_ns=info.st_atime_ns,
                    ctime_ns=info.st_ctime_ns,
                    size=stored.size,
                    content=stored.content,
                )
                copies.append({**copied.to_json(), "integrity": "ok"})
                total += stored.size
                ctx.events.progress.file_done()
                Path(copy_path).unlink()
        tree = save_path_tree(ctx.saver, files)
        import sqlite3

        record = {"databases": copies, "sqlite_version": sqlite3.sqlite_version}
        return Produced(
            tree=tree,
            source=request.source,
            kind=SNAPSHOT_KIND,
            paths=request.paths,
            archive=ArchiveResult(tree=tree, files_new=len(files), bytes_total=total),
            extra={"sqlite": record},
            record=record,
        )

    def _targets(
        self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination
    ) -> tuple[dict[str, Node], list[tuple[str, str]], bool]:
        """The snapshot's databases, (database, file) for each one the restore writes, and ``force``."""
        self.check_restore(into)
        if snapshot.kind != SNAPSHOT_KIND:
            raise UsageError(
                f"snapshot {snapshot.short_id} is a {snapshot.kind} snapshot, not a sqlite one",
                hint="'lifeboat snapshots' shows each snapshot's kind",
            )
        found = dict(databases(ctx.loader, snapshot.tree))
        if isinstance(into, IntoDirectory):
            chosen = pick(found, into.subpath, snapshot)
            plan = [(database, os.path.join(into.path, database.lstrip("/"))) for database in chosen]
            force = into.force
        else:
            assert isinstance(into, IntoServer)
            target = str(into.settings.get("path") or "")
            if not target:
                raise UsageError(f"{option('path')} is required", hint="the file to write the database to")
            chosen = pick(found, str(into.settings.get("database") or ""), snapshot)
            if len(chosen) != 1:
                raise UsageError(
                    f"snapshot {snapshot.short_id} holds {len(chosen)} databases: {', '.join(chosen)}",
                    hint=f"choose one with {option('database')}, or restore them all below a directory",
                )
            plan = [(chosen[0], target)]
            force = bool(into.settings.get("force"))
        return found, plan, force

    @staticmethod
    def _refuse(plan: list[tuple[str, str]], force: bool) -> None:
        """An existing file is never replaced without ``force`` (nor one a program may hold open)."""
        for _, path in plan:
            if os.path.lexists(path) and not force:
                raise RestoreRefused(f"{path} exists", hint=f"pass {option('force')} to replace it")
            for suffix in ("-wal", "-journal"):
                if os.path.exists(path + suffix) and not force:
                    raise RestoreRefused(
                        f"{path}{suffix} exists: a program may have {path} open",
                        hint=f"stop what uses the database; pass {option('force')} to replace it anyway",
                    )

    def plan(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> RestorePlan:
        """Each database file the restore writes, refused as it refuses; free space where they go."""
        from lifeboat.sources.plan import PlannedWrite, judge_space, new_plan, path_state

        found, targets, force = self._targets(ctx, snapshot, into)
        plan = new_plan(self.name, snapshot, describe_into(into))
        for database, path in targets:
            plan.writes.append(
                PlannedWrite(f"database {database}", path, found[database].size, 1, state=path_state(path))
            )
        plan.attempt(lambda: self._refuse(targets, force), "no database file would be replaced")
        judge_space(plan, force=force)
        plan.unchecked.append("PRAGMA integrity_check (runs on each restored file)")
        return plan

    def restore(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> SqliteRestore:
        """Write the databases (all, or the one chosen) and check each with integrity_check. An
        existing file is never replaced without ``force``; nothing is written if one would be."""
        from lifeboat.sources.filewrite import write_node
        from lifeboat.sources.sqlite.copy import integrity_problems

        found, plan, force = self._targets(ctx, snapshot, into)
        self._refuse(plan, force)
        restored: list[RestoredDatabase] = []
        for database, path in plan:
            ctx.events.check()
            node = found[database]
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            for suffix in ("-wal", "-shm", "-journal"):  # an old database's journal must not apply to this one
                Path(path + suffix).unlink(missing_ok=True)
            size = write_node(ctx.loader, node, path, mode=node.mode or 0o600, owner=(node.uid, node.gid))
            ctx.events.progress.file_done()
            restored.append(RestoredDatabase(database, path, size, tuple(integrity_problems(path))))
        return SqliteRestore(snapshot, tuple(restored))

    def verify(self, ctx: RestoreContext, snapshot: Snapshot) -> Verification:
        """Each stored database passes PRAGMA integrity_check (written to a private temporary
        file), and the snapshot holds every database its record lists."""
        from lifeboat.sources.filewrite import write_node
        from lifeboat.sources.sqlite.copy import integrity_problems

        problems: list[str] = []
        found = dict(databases(ctx.loader, snapshot.tree))
        record = snapshot.extra.get("sqlite", {})
        listed = [db.get("path") for db in record.get("databases", [])] if isinstance(record, Mapping) else []
        problems += [f"{path}: recorded, but not in the snapshot" for path in listed if path not in found]
        with tempfile.TemporaryDirectory(prefix="lifeboat-verify-") as private:
            for number, (database, node) in enumerate(sorted(found.items())):
                ctx.events.check()
                path = os.path.join(private, f"{number}.db")
                try:
                    write_node(ctx.loader, node, path)
                except LifeboatError as exc:
                    problems.append(f"{database}: {exc.message}")
                    continue
                problems += [f"{database}: {message}" for message in integrity_problems(path)]
                Path(path).unlink()
        return Verification(
            checked=f"{len(found)} SQLite database(s) with PRAGMA integrity_check", problems=tuple(problems)
        )

    def describe(self, snapshot: Snapshot) -> list[str]:
        record = snapshot.extra.get("sqlite", {})
        if not isinstance(record, Mapping):
            return []
        return [
            f"{db.get('path')}: {db.get('tables', 0)} tables, {db.get('pages', 0)} pages, integrity ok"
            for db in record.get("databases", [])
        ]


def pick(found: Mapping[str, Node], wanted: str, snapshot: Snapshot) -> list[str]:
    """The databases ``wanted`` names (its path when backed up; all when empty)."""
    if not wanted:
        if not found:
            raise ObjectNotFound(f"snapshot {snapshot.short_id} holds no database")
        return sorted(found)
    key = "/" + wanted.strip("/")
    if key not in found:
        raise ObjectNotFound(
            f"snapshot {snapshot.short_id} holds no database {key}", hint=f"it holds: {', '.join(sorted(found))}"
        )
    return [key]


def databases(loader: BlobLoader, tree: bytes, prefix: str = "") -> Iterator[tuple[str, Node]]:
    """Every file of the snapshot's tree, by its absolute path."""
    for node in loader.load_tree(tree).nodes:
        path = f"{prefix}/{node.name}"
        if node.type is NodeType.FILE:
            yield path, node
        elif node.type is NodeType.DIR and node.subtree is not None:
            yield from databases(loader, node.subtree, path)


def save_path_tree(saver: BlobSaver, files: Mapping[str, Node]) -> bytes:
    """Store the trees that hold each file at its absolute path (directories as on disk); the root's id."""
    from lifeboat.core.tree import Tree

    def build(directory: str, below: dict[str, Node]) -> bytes:
        nodes: list[Node] = []
        children: dict[str, dict[str, Node]] = {}
        for rest, node in below.items():
            head, _, tail = rest.partition("/")
            if tail:
                children.setdefault(head, {})[tail] = node
            else:
                nodes.append(node)
        for name, inner in children.items():
            path = f"{directory}/{name}"
            subtree = build(path, inner)
            info = os.stat(path)
            nodes.append(
                Node(
                    name=name,
                    type=NodeType.DIR,
                    mode=info.st_mode & 0o7777,
                    uid=info.st_uid,
                    gid=info.st_gid,
                    mtime_ns=info.st_mtime_ns,
                    ctime_ns=info.st_ctime_ns,
                    subtree=subtree,
                )
            )
        return saver.save_tree(Tree(tuple(nodes)))

    return build("", {path.lstrip("/"): node for path, node in files.items()})
