"""The ``command`` kind: a producer's standard output backed up as one file, restored into a
consumer's standard input (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Node, NodeType
from lifeboat.errors import LifeboatError, ObjectNotFound, SourceError, UsageError, option
from lifeboat.sources.base import (
    BackupContext,
    BackupOptions,
    IntoProgram,
    Produced,
    RestoreContext,
    RestoreDestination,
    RestoreInto,
    SourceKind,
    Verification,
    describe_into,
)
from lifeboat.sources.command.spec import ProgramSpec, program_environment

if TYPE_CHECKING:
    from lifeboat.config.model import CommandSourceConfig
    from lifeboat.core.protocols import BlobLoader
    from lifeboat.sources.plan import RestorePlan
    from lifeboat.sources.tools.program import ProgramExit

SNAPSHOT_KIND = "command"


@dataclass(frozen=True)
class CommandRequest:
    """Run ``producer`` and keep its output as the file ``name``."""

    name: str
    producer: ProgramSpec
    source: str = ""  # the snapshot's source; default: name
    allow_empty: bool = False


@dataclass(frozen=True)
class CommandRestore:
    """A file of a snapshot streamed into a consumer that took it all and exited 0."""

    snapshot: Snapshot
    path: str
    size: int
    ended: ProgramExit

    def to_json(self) -> dict[str, Any]:
        return {"snapshot": self.snapshot.id, "path": self.path, "bytes": self.size, **self.ended.to_json()}

    def failure(self) -> LifeboatError | None:
        return None

    def describe(self) -> str:
        from lifeboat.core.units import format_bytes

        return (
            f"restored {self.path} ({format_bytes(self.size)}) of snapshot {self.snapshot.short_id} "
            f"into {self.ended.program}, which exited 0"
        )


class CommandSource(SourceKind):
    name = "command"
    config_model = "lifeboat.config.model:CommandSourceConfig"
    snapshot_kinds = (SNAPSHOT_KIND,)
    restores_into = frozenset({RestoreInto.PROGRAM})
    runs_programs = True

    def label(self, request: CommandRequest) -> str:
        return f"backing up the output of {request.producer.program}"

    def request(self, config: CommandSourceConfig | None, options: BackupOptions) -> CommandRequest:
        """The producer given (``command``), else the configured one; its output's name given,
        else the configured one, else the source's name."""
        settings = options.settings
        argv = tuple(settings.get("command") or (config.command if config is not None else ()))
        name = settings.get("name") or (config.name if config is not None else None) or options.source
        allow_empty = bool(settings.get("allow_empty")) or bool(config is not None and config.allow_empty)
        if not argv:
            raise UsageError(
                "no program to run", hint=f"give the producer's program and arguments ({option('command')})"
            )
        if not name:
            raise UsageError(f"{option('name')} is required", hint="the file name the program's output is kept under")
        from lifeboat.sources.stream import check_stream_name

        check_stream_name(name)
        extra = dict(config.env) if config is not None else {}
        return CommandRequest(
            name=name,
            producer=ProgramSpec(argv, program_environment(options.environment, extra)),
            source=options.source,
            allow_empty=allow_empty,
        )

    def backup(self, ctx: BackupContext, request: CommandRequest) -> Produced:
        """Run the producer and store its output; an empty output is a failed source unless allowed."""
        from lifeboat.sources.command.backup import produce
        from lifeboat.sources.files.archiver import ArchiveResult
        from lifeboat.sources.stream import stream_tree

        produced = produce(
            ctx.saver,
            ctx.chunker,
            request.producer,
            progress=ctx.events.progress,
            on_stderr=ctx.events.program_output,
            cancel=ctx.events.check,
        )
        if produced.stored.size == 0 and not request.allow_empty:
            raise SourceError(
                produced.ended.with_last_line(f"{request.producer.program} wrote nothing (0 bytes)"),
                hint=f"no snapshot was saved; set {option('allow_empty')} if an empty output is right",
            )
        tree = stream_tree(ctx.saver, request.name, produced.stored)
        ctx.events.progress.file_done()
        return Produced(
            tree=tree,
            source=request.source or request.name,
            kind=SNAPSHOT_KIND,
            paths=(request.name,),
            archive=ArchiveResult(tree=tree, files_new=1, bytes_total=produced.stored.size),
            extra={"command": produced.ended.to_json()},
            record=produced.ended,
        )

    def restore(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> CommandRestore:
        """Stream the snapshot's file into the consumer; fails unless it takes it all and exits 0."""
        from lifeboat.sources.command.restore import consume

        argv = self._consumer(ctx, into)
        assert isinstance(into, IntoProgram)
        config: CommandSourceConfig | None = ctx.config
        extra = dict(config.env) if config is not None else {}
        consumer = ProgramSpec(argv, program_environment(ctx.environment, extra))
        where, node = the_file(ctx.loader, snapshot, into.path.strip("/"))
        ended = consume(
            ctx.loader,
            node,
            consumer,
            progress=ctx.events.progress,
            on_stderr=ctx.events.program_output,
            stdout_to_stderr=into.stdout_to_stderr,
            cancel=ctx.events.check,
        )
        return CommandRestore(snapshot, "/" + where, node.size, ended)

    def _consumer(self, ctx: RestoreContext, into: RestoreDestination) -> tuple[str, ...]:
        """The consumer's argv: given, else the configured ``restore_command``."""
        self.check_restore(into)
        assert isinstance(into, IntoProgram)
        config: CommandSourceConfig | None = ctx.config
        argv = into.argv or tuple((config.restore_command if config is not None else None) or ())
        if not argv:
            raise UsageError(
                "no program to restore into",
                hint=f"give the consumer's program and arguments ({option('restore_command')})",
            )
        return tuple(argv)

    def plan(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> RestorePlan:
        """The file the restore streams, into which program; the program itself runs only then."""
        from lifeboat.sources.plan import PlannedWrite, new_plan

        argv = self._consumer(ctx, into)
        assert isinstance(into, IntoProgram)
        where, node = the_file(ctx.loader, snapshot, into.path.strip("/"))
        plan = new_plan(self.name, snapshot, describe_into(into))
        plan.destination = f"program {' '.join(argv)}"
        plan.writes.append(PlannedWrite(f"/{where} on standard input", " ".join(argv), node.size, 1, on_disk=False))
        plan.unchecked.append("what the program does with it (it must read it all and exit 0)")
        return plan

    def verify(self, ctx: RestoreContext, snapshot: Snapshot) -> Verification:
        """The snapshot holds the one file the producer wrote, as long as recorded, and the
        producer exited 0."""
        problems: list[str] = []
        ended = snapshot.extra.get("command", {})
        if not isinstance(ended, Mapping) or ended.get("exit_status") != 0:
            problems.append("the snapshot does not record a producer that exited 0")
        nodes = ctx.loader.load_tree(snapshot.tree).nodes
        if len(nodes) != 1 or nodes[0].type is not NodeType.FILE:
            problems.append("the snapshot does not hold exactly one file")
        elif sum(ctx.loader.raw_lengths(nodes[0].content)) != nodes[0].size:
            problems.append(f"{nodes[0].name}: its blobs do not add up to its recorded size")
        return Verification(checked="one file of the producer's whole output", problems=tuple(problems))

    def describe(self, snapshot: Snapshot) -> list[str]:
        ended = snapshot.extra.get("command", {})
        if not isinstance(ended, Mapping):
            return []
        return [
            f"{ended.get('program', 'the program')} exited 0; the end of its standard error "
            f"({ended.get('stderr_bytes', 0)} bytes) is in the snapshot"
        ]


def the_file(loader: BlobLoader, snapshot: Snapshot, path: str) -> tuple[str, Node]:
    """The file ``path`` of ``snapshot`` or, without a path, its only file."""
    from lifeboat.core.treewalk import find

    if path:
        node = find(loader, snapshot.tree, path)
        if node is None:
            raise ObjectNotFound(f"snapshot {snapshot.short_id} has no path /{path}")
        if node.type is not NodeType.FILE:
            raise UsageError(f"/{path} is a {node.type.value}, not a file", hint="'lifeboat ls' lists the snapshot")
        return path, node
    nodes = loader.load_tree(snapshot.tree).nodes
    if len(nodes) == 1 and nodes[0].type is NodeType.FILE:
        return nodes[0].name, nodes[0]
    raise UsageError(
        f"snapshot {snapshot.short_id} does not hold exactly one file",
        hint=f"name the file with {option('path')}; 'lifeboat ls {snapshot.short_id}' lists the snapshot",
    )
