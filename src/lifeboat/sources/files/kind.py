"""The ``files`` kind: directory trees backed up by the archiver and laid down by the restorer."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lifeboat.core.patterns import PATTERN_HINT, PathFilter
from lifeboat.core.snapshot import Snapshot, find_parent
from lifeboat.core.tree import Tree
from lifeboat.errors import ObjectNotFound, PartialBackup, UsageError
from lifeboat.sources.base import (
    BackupContext,
    BackupOptions,
    IntoDirectory,
    Produced,
    RestoreContext,
    RestoreDestination,
    RestoreInto,
    SourceKind,
    describe_into,
)

if TYPE_CHECKING:
    from lifeboat.config.model import FilesSourceConfig
    from lifeboat.sources.files.restorer import RestoreResult
    from lifeboat.sources.plan import RestorePlan

SNAPSHOT_KIND = "files"


def chunk_streams_for(workers: int) -> int:
    """How many files above the smallest chunk a backup with ``workers`` cuts at once: half the
    workers, at least one. Each stream holds a chunking buffer; on two cores a second stream
    bought 4 % of a first backup's time for 5 MiB more at the peak (docs/cli.md, ``--workers``)."""
    return max(1, workers // 2)


@dataclass(frozen=True)
class FilesRequest:
    """What a files backup reads and how."""

    paths: tuple[str, ...]
    source: str = ""  # the snapshot's source; default: the paths
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    one_file_system: bool = False
    parent: str | None = None  # snapshot id; None picks the latest of the same source
    # Count the files and bytes ahead of the walk, for a progress bar's ETA. It costs a
    # second pass over every directory, so only a front end that shows progress asks.
    count_ahead: bool = False

    def source_name(self) -> str:
        from lifeboat.sources.files.archiver import normalize_paths

        if self.source:
            return self.source
        return ",".join("/" + "/".join(p) for p in normalize_paths(self.paths))


class FilesSource(SourceKind):
    name = "files"
    config_model = "lifeboat.config.model:FilesSourceConfig"
    snapshot_kinds = (SNAPSHOT_KIND,)
    restores_into = frozenset({RestoreInto.DIRECTORY})

    def request(self, config: FilesSourceConfig | None, options: BackupOptions) -> FilesRequest:
        """The configured source's paths and patterns, with the options' patterns added;
        without a configured source, the paths the options give."""
        settings = options.settings
        paths = tuple(settings.get("paths") or ())
        includes = tuple(settings.get("include") or ())
        excludes = tuple(settings.get("exclude") or ())
        one_fs = bool(settings.get("one_file_system", False))
        try:
            PathFilter.build(includes, excludes)
        except ValueError as exc:
            raise UsageError(str(exc), hint=PATTERN_HINT) from None
        if config is not None:
            if paths:
                raise UsageError(f"source {options.source!r} is configured; do not also give paths")
            paths = tuple(config.paths)
            includes = tuple(config.include) + includes
            excludes = tuple(config.exclude) + excludes
            one_fs = config.one_file_system or one_fs
        if not paths:
            raise UsageError("nothing to back up", hint="give the paths to back up, or a configured source")
        if any(not path for path in paths):
            raise UsageError("an empty path was given", hint="name the files and directories to back up ('.' is here)")
        return FilesRequest(
            paths=paths,
            source=options.source,
            includes=includes,
            excludes=excludes,
            one_file_system=one_fs,
            parent=settings.get("parent"),
            count_ahead=bool(settings.get("count_ahead", False)),
        )

    def label(self, request: FilesRequest) -> str:
        return "backing up"

    def check(self, request: FilesRequest) -> None:
        """A named path that is missing or unreadable fails before the repository is touched."""
        from lifeboat.sources.files.targets import check_targets

        check_targets(request.paths, source=request.source)

    def backup(self, ctx: BackupContext, request: FilesRequest) -> Produced:
        from lifeboat.sources.files.archiver import FileArchiver, FileBackupOptions
        from lifeboat.sources.files.scanner import scan

        source = request.source_name()
        progress = ctx.events.progress
        options = FileBackupOptions(
            paths=tuple(os.path.abspath(p) for p in request.paths),
            filter=PathFilter.build(request.includes, request.excludes),
            one_file_system=request.one_file_system,
            readers=2 * max(1, ctx.workers),  # reads wait on the disk: twice the cores keeps them busy
            chunk_streams=chunk_streams_for(ctx.workers),
        )
        parent = (
            ctx.reader.resolve_snapshot(request.parent)
            if request.parent
            else find_parent(ctx.readable_snapshots(), source, ctx.hostname, self.snapshot_kinds[0])
        )
        stop_scan = threading.Event()
        scanner = threading.Thread(
            target=scan,
            args=(options.paths, options.filter, progress, stop_scan),
            kwargs={"one_fs": options.one_file_system},
            name="lifeboat-scan",
            daemon=True,
        )
        if request.count_ahead:
            scanner.start()
        elif parent is not None:
            # Without a scan, the previous backup of the source is the best estimate.
            files = sum(int(parent.summary.get(k, 0)) for k in ("files_new", "files_changed", "files_unmodified"))
            progress.scanned(files, int(parent.summary.get("bytes_total", 0)))
            progress.scan_finished = True
        try:
            archive = FileArchiver(
                ctx.saver,
                ctx.chunker,
                options,
                parent_loader=ctx.reader,
                parent_tree=parent.tree if parent else None,
                progress=progress,
                notify=ctx.events.notice,
                cancel=ctx.events.check,
            ).run()
        finally:
            stop_scan.set()
            if scanner.is_alive():
                scanner.join()
        return Produced(
            tree=archive.tree,
            source=source,
            kind=self.snapshot_kinds[0],  # a subclass's own (the config kind's)
            paths=options.paths,
            archive=archive,
            parent=parent,
            partial=lambda snapshot: _partial(snapshot, archive.errors),
        )

    def restore(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> RestoreResult:
        """Lay ``snapshot`` (or ``into.subpath`` of it) down below ``into.path``."""
        from lifeboat.core.treewalk import find
        from lifeboat.sources.files.restorer import FileRestorer, RestoreOptions

        self.check_restore(into)
        assert isinstance(into, IntoDirectory)
        trees = ctx.loader.tree_source()  # the walk's trees, read by pack
        if into.subpath:
            node = find(trees, snapshot.tree, into.subpath)
            if node is None:
                raise ObjectNotFound(f"snapshot {snapshot.short_id} has no path /{into.subpath}")
            # A directory's contents go straight into the target; a single entry goes into it.
            tree = trees.load_tree(node.subtree) if node.subtree is not None else Tree((node,))
        else:
            tree = trees.load_tree(snapshot.tree)
        options = RestoreOptions(
            target=into.path, filter=into.filter, force=into.force, dry_run=into.dry_run, workers=into.workers
        )
        if into.restore_owner is not None:
            options = replace(options, restore_owner=into.restore_owner)
        restorer = FileRestorer(
            ctx.loader,
            options,
            progress=ctx.events.progress,
            notify=ctx.events.notice,
            cancel=ctx.events.check,
            trees=trees,
        )
        return restorer.restore(tree)

    def plan(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> RestorePlan:
        """The restore's own walk without writing (its dry run: the same filter, the same
        counts), its target check, and the free space below the target."""
        from lifeboat.sources.files.restorer import check_target
        from lifeboat.sources.plan import PlannedWrite, judge_space, new_plan, path_state

        self.check_restore(into)
        assert isinstance(into, IntoDirectory)
        counted = self.restore(ctx, snapshot, replace(into, dry_run=True))
        plan = new_plan(self.name, snapshot, describe_into(into))
        plan.writes.append(PlannedWrite("files", into.path, counted.bytes, counted.files, state=path_state(into.path)))
        plan.details = {"files": counted.files, "dirs": counted.dirs, "links": counted.links, "bytes": counted.bytes}
        plan.lines.append(
            f"{counted.files} files, {counted.dirs} directories, {counted.links} links"
            + (f" of /{into.subpath}" if into.subpath else "")
        )
        plan.attempt(lambda: check_target(into.path, force=into.force), "the target can be written")
        judge_space(plan, force=into.force)
        return plan


def _partial(snapshot: Snapshot, errors: int) -> PartialBackup | None:
    if not errors:
        return None
    return PartialBackup(f"snapshot {snapshot.short_id} is partial: {errors} entries could not be read")
