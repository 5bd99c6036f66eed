"""The source contract: what every kind of source provides, and nothing more.

A *kind* (``files``, ``postgres``, ``command``; next ``pg_dump``, ``mariadb``, ``redis``,
``ldap``, ``sqlite``) is one :class:`SourceKind` in its own package under ``sources/``,
registered by name in :mod:`lifeboat.sources.registry`. It declares its configuration model
(a pydantic class in ``config/model.py``, named by ``config_model``) and the same few verbs:

``request(config, options)``
    The configured source (or none, for a source given on the command line) and the
    options a front end gives, resolved into the kind's own backup request. Pure; the
    defaults are the configuration model's.
``backup(ctx, request)``
    Produce the snapshot's tree into ``ctx.saver`` (the write session) and say what the
    snapshot records (:class:`Produced`). The operation around it
    (:mod:`lifeboat.operations.snapshots`) takes the lock, commits the session and saves the
    snapshot: a source never sees the repository, only the narrow protocols of
    :mod:`lifeboat.core.protocols`.
``restore(ctx, snapshot, into)``
    Write a snapshot back: into a directory, into a consumer program, or into a running
    server — those listed in ``restores_into``; the others raise
    :class:`~lifeboat.errors.NotSupported`.
``verify(loader, snapshot)``
    Check what the repository's byte-level check cannot: that a dump is whole, that a base
    backup has its label. Files have nothing more to check.
``plan(ctx, snapshot, into)``
    What ``restore`` would write where, and whether it can succeed, with nothing written
    (:mod:`lifeboat.sources.plan`). The default counts the snapshot's files and bytes and, for
    a directory, checks the target and its free space; a kind that checks more before it
    writes shares those checks with its plan.
``scratch(ctx, snapshot, directory)``
    For a restore drill: start a throw-away instance (a redis-server on a free port) from a
    snapshot restored into ``directory``. Optional: NotSupported by default. (PostgreSQL's
    drill recovers to a point in time, not to a snapshot: :mod:`lifeboat.operations.scratch`.)

Every verb reports through ``ctx.events`` (phases, counters, notices) and checks
``ctx.events.check()`` at its safe points, so an operation can be cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from lifeboat.core.patterns import PathFilter
from lifeboat.core.progress import Notice, Severity
from lifeboat.errors import LifeboatError, NotSupported

if TYPE_CHECKING:
    from lifeboat.core.chunking import Chunker
    from lifeboat.core.events import Events
    from lifeboat.core.protocols import ArchivedWal, BlobSaver, PackLoader, RepositoryReader
    from lifeboat.core.snapshot import Snapshot
    from lifeboat.sources.files.archiver import ArchiveResult
    from lifeboat.sources.plan import RestorePlan


class RestoreInto(StrEnum):
    """Where a kind can restore a snapshot to."""

    DIRECTORY = "directory"  # entries laid down below a directory
    PROGRAM = "program"  # the stored stream written into a consumer's standard input
    SERVER = "server"  # loaded into a running server (pg_restore -d, mariadb, redis-cli…)
    # a server's data directory by point-in-time recovery: not this contract's ``restore`` but
    # its own use case (PostgreSQL: operations/pitr.py), which ``restore --source NAME`` runs
    RECOVERY = "recovery"


# --- backing up ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupOptions:
    """What a front end asks of one backup, whatever the kind.

    ``settings`` are explicit values of the kind's configuration keys (``paths``,
    ``method``, ``allow_empty``…): a command-line option or an API field, given over the
    configured source. ``environment`` is what programs the source runs start from (the
    front end passes it in; nothing below ``app/`` reads the process environment).
    """

    source: str = ""  # the configured source's name, or a label
    tags: tuple[str, ...] = ()
    hostname: str | None = None
    workers: int | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class BackupContext:
    """What a source is given while it backs up: where blobs go and what it may read."""

    saver: BlobSaver  # the write session: blobs are durable only once it commits
    chunker: Chunker  # the repository's content-defined chunker
    reader: RepositoryReader  # the parent's trees and the snapshots
    archived_wal: Callable[[str], ArchivedWal]  # a database system id → its archived WAL
    block_size: int  # the repository's fixed block size (PostgreSQL relation files)
    hostname: str
    workers: int
    events: Events
    clock: Callable[[], datetime]

    def readable_snapshots(self) -> list[Snapshot]:
        """The snapshots a backup may take its parent from. One that cannot be decoded is
        named in a warning and passed over: a damaged snapshot must not stop new backups."""
        readable, unreadable = self.reader.snapshots_and_damage()
        for bad in unreadable:
            self.events.notice(
                Notice(
                    Severity.WARNING,
                    f"snapshot {bad.id[:8]}",
                    f"cannot be read ({bad.reason}); not considered as this backup's parent "
                    "('lifeboat check' shows the damage)",
                )
            )
        return readable


@dataclass
class Produced:
    """What a source hands back once its data is in the write session (not yet committed)."""

    tree: bytes  # the snapshot's root tree
    source: str  # the snapshot's source name
    kind: str  # the snapshot's kind (files, postgres, command…)
    paths: tuple[str, ...]
    archive: ArchiveResult  # what was found: files, directories, bytes, unreadable entries
    time: datetime | None = None  # the snapshot's time (default: when the backup began)
    parent: Snapshot | None = None
    tags: tuple[str, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)  # more counters for the snapshot's summary
    extra: dict[str, Any] = field(default_factory=dict)  # the kind's record (a base backup, a program's end)
    # After the commit (packs and index durable), before the snapshot is saved: wait for what
    # the snapshot needs (PostgreSQL: its WAL) or refuse it (raise: no snapshot). Returns
    # more summary counters.
    finish: Callable[[], dict[str, Any]] | None = None
    record: Any = None  # the kind's own typed record, handed back in the result
    # The error that makes a saved snapshot partial (exit 3), given the snapshot; None: whole.
    partial: Callable[[Snapshot], LifeboatError | None] | None = None
    # The kind's part of the result's JSON form, given the saved snapshot.
    details: Callable[[Snapshot], dict[str, Any]] | None = None


# --- restoring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IntoDirectory:
    """Lay the snapshot (or ``subpath`` of it) down below ``path``."""

    path: str
    subpath: str = ""
    filter: PathFilter = field(default_factory=PathFilter)  # only these entries (include / exclude)
    force: bool = False
    dry_run: bool = False
    workers: int = 2
    restore_owner: bool | None = None  # restore ownership; None: when running as root


@dataclass(frozen=True)
class IntoProgram:
    """Write the snapshot's stream (the file ``path``, or its only file) into a consumer's
    standard input. ``argv`` None: the configured consumer."""

    argv: tuple[str, ...] | None = None
    path: str = ""
    stdout_to_stderr: bool = False  # the consumer's output must not mix with ours (--json)


@dataclass(frozen=True)
class IntoServer:
    """Load the snapshot into a running server; ``settings`` name it (host, port, database…)."""

    settings: Mapping[str, Any] = field(default_factory=dict)


RestoreDestination = IntoDirectory | IntoProgram | IntoServer


@dataclass(frozen=True)
class RestoreContext:
    """What a source is given while it restores."""

    loader: PackLoader  # verified reads: damaged data raises, never returns
    events: Events
    config: Any = None  # the configured source (its kind's model), if any
    environment: Mapping[str, str] | None = field(default=None, repr=False)  # for programs it runs


class Restored(Protocol):
    """What a restore verb returns."""

    def to_json(self) -> dict[str, Any]: ...

    def failure(self) -> LifeboatError | None:
        """The error a restore that finished with problems ends with (None: all restored)."""
        ...

    def describe(self) -> str:
        """What was restored, in one line (for a text front end)."""
        ...


# --- verifying and drills ------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """What a semantic check of one snapshot found; no problems: it holds what it should."""

    checked: str  # what was checked, in words
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class ScratchInstance:
    """A throw-away instance started from a restored snapshot; ``stop`` ends and removes it."""

    kind: str
    directory: str
    address: Mapping[str, Any]  # how to reach it (host, port…)
    stop: Callable[[], None]


# --- the contract --------------------------------------------------------------------------


class SourceKind:
    """One kind of source. Subclasses set the class attributes and implement the verbs."""

    name: ClassVar[str]
    config_model: ClassVar[str]  # "module:Class" of its configuration model in config/model.py
    snapshot_kinds: ClassVar[tuple[str, ...]]  # the kinds of snapshot its backups make
    restores_into: ClassVar[frozenset[RestoreInto]] = frozenset()
    runs_programs: ClassVar[bool] = False  # its backups or restores run a program beside the stream

    def label(self, request: Any) -> str:
        """What a progress line calls a backup of ``request``."""
        return f"backing up {self.name}"

    def request(self, config: Any, options: BackupOptions) -> Any:
        """The kind's backup request from its configured source (or None) and ``options``."""
        raise NotImplementedError

    def check(self, request: Any) -> None:
        """What can fail before the repository is touched (a named path that is missing)."""
        return

    def backup(self, ctx: BackupContext, request: Any) -> Produced:
        raise NotImplementedError

    def restore(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> Restored:
        raise NotSupported(f"a {self.name} source cannot restore {_where(into)}")

    def plan(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> RestorePlan:
        """What ``restore`` would do, refused as it would refuse; nothing is written."""
        from lifeboat.sources.plan import directory_plan, stream_plan

        self.check_restore(into)
        destination = describe_into(into)
        if isinstance(into, IntoDirectory):
            return directory_plan(
                self.name,
                ctx.loader,
                snapshot,
                into.path,
                subpath=into.subpath,
                force=into.force,
                destination=destination,
            )
        if isinstance(into, IntoProgram):
            return stream_plan(
                self.name, ctx.loader, snapshot, subpath=into.path, what="standard input", destination=destination
            )
        plan = stream_plan(self.name, ctx.loader, snapshot, subpath="", what="server", destination=destination)
        plan.unchecked.append("what the server holds now: the restore checks it when it runs")
        return plan

    def verify(self, ctx: RestoreContext, snapshot: Snapshot) -> Verification:
        return Verification(checked="nothing beyond the repository's own check")

    def scratch(self, ctx: RestoreContext, snapshot: Snapshot, directory: str) -> ScratchInstance:
        raise NotSupported(f"a {self.name} source cannot start a scratch instance for a drill yet")

    def describe(self, snapshot: Snapshot) -> list[str]:
        """Lines about a backup this kind made, beyond the counters (for a text front end)."""
        return []

    def check_restore(self, into: RestoreDestination) -> None:
        """Raise NotSupported unless this kind can restore into ``into``."""
        wanted = {
            IntoDirectory: RestoreInto.DIRECTORY,
            IntoProgram: RestoreInto.PROGRAM,
            IntoServer: RestoreInto.SERVER,
        }[type(into)]
        if wanted not in self.restores_into:
            can = ", ".join(sorted(self.restores_into)) or "nothing"
            raise NotSupported(f"a {self.name} source cannot restore {_where(into)}; it restores into: {can}")


def describe_into(into: RestoreDestination) -> str:
    """The destination in words for a plan (never a secret: only plain settings are named)."""
    if isinstance(into, IntoDirectory):
        return f"directory {into.path}" + (f" (/{into.subpath} of the snapshot)" if into.subpath else "")
    if isinstance(into, IntoProgram):
        return "program " + (" ".join(into.argv) if into.argv else "(the configured consumer)")
    shown = [
        f"{key}={value}"
        for key, value in into.settings.items()
        if isinstance(value, str | int | bool | tuple) and value not in ("", None, False, ())
    ]
    return "server" + (f" ({', '.join(shown)})" if shown else "")


def _where(into: RestoreDestination) -> str:
    if isinstance(into, IntoDirectory):
        return "into a directory"
    if isinstance(into, IntoProgram):
        return "into a program"
    return "into a server"
