"""Backing up directory trees: walk, read, chunk and store, building tree blobs.

The walker (the calling thread) lists directories and hands regular files to a pool
of reader threads, which chunk and hash them and give the chunks to the blob saver
(whose own workers compress and encrypt). Each directory becomes a job on a FIFO
that a finisher thread completes once all its children are done; the walk produces
directories in post-order, so the finisher never waits on a job behind it.

A file whose size, mtime, ctime and inode equal those in the parent snapshot is not
read again: its content list is reused when every blob is still stored. Files that
vanish or change while read, and entries that cannot be read, are reported as notices,
never as crashes; unreadable entries make the backup partial.

Each requested path is stored at its absolute path in the snapshot tree (``/var/lib/x`` as
``var/lib/x``), unless the request places it elsewhere (:class:`TreePlace`): a PostgreSQL
backup stores the data directory as ``data`` and each tablespace as ``tablespaces/<oid>``.
A place may ask for entries that exist only once every file has been read (the
``backup_label`` the server returns at the end of a base backup); its directory's tree is
written after them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from lifeboat.core.chunking import Chunker, fixed_chunks
from lifeboat.core.ids import BlobType
from lifeboat.core.patterns import PathFilter
from lifeboat.core.progress import Notice, NoticeSink, Progress, Severity
from lifeboat.core.protocols import BlobSaver, ParentTrees
from lifeboat.core.trampoline import Nested, run_nested
from lifeboat.core.tree import Node, NodeType, ParentEntry, Tree
from lifeboat.errors import IntegrityError, option
from lifeboat.sources.files.dirchain import DIR_FLAGS, DirectoryChain
from lifeboat.sources.files.metadata import (
    OwnerNames,
    describe_special,
    is_sparse,
    node_from_stat,
    node_type,
)

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_NOATIME = getattr(os, "O_NOATIME", 0)
_DONE = object()


@dataclass(frozen=True)
class TreePlace:
    """Back up ``source`` (a path on disk) as the entry ``at`` of the snapshot tree,
    e.g. ``("data",)``, instead of at its own absolute path."""

    source: str
    at: tuple[str, ...]
    # Entries added to this directory once every file of the backup has been read, made from
    # the directory's own node (for their owner); they replace walked entries of the same name.
    late_entries: Callable[[Node], Sequence[Node]] | None = None


@dataclass(frozen=True)
class FileBackupOptions:
    """What to back up and how."""

    paths: tuple[str, ...] = ()  # stored at their absolute paths
    places: tuple[TreePlace, ...] = ()  # or: stored where each place says (not with ``paths``)
    # With ``places``: directories of the snapshot tree that are not on disk, by tree path, with
    # their metadata; each is stored even when empty. Others on the way to a place get mode 0700,
    # the time of the backup and no owner.
    made_dirs: Mapping[tuple[str, ...], Node] = field(default_factory=dict)
    filter: PathFilter = field(default_factory=PathFilter)
    one_file_system: bool = False
    readers: int = 2
    # Files above the smallest chunk cut at once: each holds a chunking buffer (the largest
    # chunk and an average one, 2.5 MiB by default) while the other readers take small files.
    chunk_streams: int = 2
    max_files_in_flight: int = 512
    # Fixed-size, aligned blocks instead of content-defined chunks for some files
    # (PostgreSQL relation files, whose pages change in place): path -> block size, 0 = CDC.
    block_size_for: Callable[[tuple[str, ...]], int] | None = None
    # Called with (path, offset, block) for every fixed block read (page checksum checks).
    on_block: Callable[[str, int, bytes], None] | None = None
    # A file whose mtime lies within this many ns before ``started_ns`` is read again even
    # if it looks unchanged: a write in the same clock tick could leave its mtime as is.
    reuse_window_ns: int = 0
    started_ns: int = 0


@dataclass
class ArchiveResult:
    """The root tree of the backup and what the walk found."""

    tree: bytes = b""
    files_new: int = 0
    files_changed: int = 0
    files_unmodified: int = 0
    dirs: int = 0
    bytes_total: int = 0
    errors: int = 0
    warnings: int = 0
    absent: list[str] = field(default_factory=list)  # requested paths the tree lacks (vanished, unreadable)

    def to_json(self) -> dict[str, int]:
        return {
            "files_new": self.files_new,
            "files_changed": self.files_changed,
            "files_unmodified": self.files_unmodified,
            "dirs": self.dirs,
            "bytes_total": self.bytes_total,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def normalize_paths(paths: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Absolute, component-split target paths, without ones covered by another."""
    parts = sorted({PurePosixPath(os.path.abspath(p)).parts[1:] for p in paths})
    kept: list[tuple[str, ...]] = []
    for candidate in parts:
        if not any(candidate[: len(k)] == k for k in kept):
            kept.append(candidate)
    return kept


def _subtree_of(entry: ParentEntry | None) -> bytes | None:
    try:
        return entry.subtree if entry is not None else None
    except IntegrityError:
        return None


def _not_cancelled() -> None:
    return None


def _abs(parts: tuple[str, ...]) -> str:
    return "/" + "/".join(parts)


class _Unchanged:
    """A file taken over from the parent snapshot unread; its node is built only if needed.

    When every entry of a directory is unchanged down to its metadata, the directory's
    tree is the parent's tree, byte for byte, and nothing needs to be built at all.
    """

    __slots__ = ("content", "entry", "name", "owners", "st")

    def __init__(
        self, name: str, st: os.stat_result, entry: ParentEntry, content: tuple[bytes, ...], owners: OwnerNames
    ) -> None:
        self.name, self.st, self.entry, self.content, self.owners = name, st, entry, content, owners

    def node(self) -> Node:
        return node_from_stat(
            self.name, self.st, NodeType.FILE, self.owners, content=self.content, sparse=self.entry.sparse
        )

    def same_as_parent(self) -> bool:
        st = self.st
        return self.entry.same_metadata(
            mode=stat.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            user=self.owners.user(st.st_uid),
            group=self.owners.group(st.st_gid),
            atime_ns=st.st_atime_ns,
            device=st.st_dev,
            links=st.st_nlink,
        )


# A child entry of a directory: done at once (a node, an unchanged file, or None when
# skipped), or still being read by a reader thread.
Done = Node | _Unchanged | None
Pending = Future[Node | None] | Done
# The walk of a directory: yields the walks of its subdirectories, returns its own entry.
_Walk = Generator[Any, Pending, Pending]


@dataclass
class _DirJob:
    node: Node  # metadata; subtree filled in by the finisher
    children: list[Pending]
    result: Future[Node | None]
    drop_if_empty: bool
    previous: Mapping[str, ParentEntry] = field(default_factory=dict)  # the parent snapshot's entries
    previous_tree: bytes | None = None  # and its tree, reused when nothing changed
    extra: tuple[Node, ...] = ()  # late entries, replacing walked ones of the same name


@dataclass
class _Barrier:
    """Done once every job queued before it is, and ``children`` are: every file has been read."""

    children: list[Pending]
    result: Future[None]


def _targets(options: FileBackupOptions) -> dict[tuple[str, ...], tuple[str, ...] | None]:
    """Snapshot tree path → path on disk of every requested entry (None: a made directory)."""
    if not options.places:
        return {parts: parts for parts in normalize_paths(options.paths)}
    if options.paths:
        raise ValueError("give paths or places, not both")
    found: dict[tuple[str, ...], tuple[str, ...] | None] = {}
    for place in options.places:
        if not place.at:
            raise ValueError(f"a place needs a tree path: {place}")
        found[place.at] = PurePosixPath(os.path.abspath(place.source)).parts[1:]
    for at in options.made_dirs:
        found[at] = None
    for at, source in found.items():
        if any(other[: len(at)] == at and other != at for other in found) and source is not None:
            raise ValueError(f"{'/'.join(at)} is a place; nothing can be stored below it")
    if len(found) != len(options.places) + len(options.made_dirs):
        raise ValueError("two places, or a place and a made directory, share a tree path")
    return found


class FileArchiver:
    """Backs up a set of paths into a tree; one instance per backup."""

    def __init__(
        self,
        saver: BlobSaver,
        chunker: Chunker,
        options: FileBackupOptions,
        *,
        parent_loader: ParentTrees | None = None,
        parent_tree: bytes | None = None,
        progress: Progress | None = None,
        notify: NoticeSink | None = None,
        cancel: Callable[[], None] | None = None,
    ) -> None:
        self._saver = saver
        self._cancel = cancel or _not_cancelled
        self._chunker = chunker
        self._options = options
        self._parent_loader = parent_loader
        self._parent_tree = parent_tree
        self.progress = progress or Progress()
        self._notify_sink = notify
        self.result = ArchiveResult()
        self._owners = OwnerNames()
        self._counts = threading.Lock()
        self._readers = ThreadPoolExecutor(max(1, options.readers), thread_name_prefix="lifeboat-read")
        self._files_in_flight = threading.BoundedSemaphore(options.max_files_in_flight)
        self._chunk_streams = threading.BoundedSemaphore(max(1, options.chunk_streams))
        self._dir_jobs: queue.Queue[_DirJob | object] = queue.Queue(maxsize=10_000)
        self._hardlinks: dict[tuple[int, int], tuple[tuple[bytes, ...], bool]] = {}
        self._failed: BaseException | None = None
        self._sources: dict[tuple[str, ...], tuple[str, ...] | None] = {}
        self._late = {p.at: p.late_entries for p in options.places if p.late_entries is not None}
        self._deferred: list[tuple[_DirJob, Callable[[Node], Sequence[Node]] | None]] = []
        self._deferred_results: set[Future[Node | None]] = set()

    # --- notices and counters ---------------------------------------------------------------
    def _notice(self, severity: Severity, path: str, message: str) -> None:
        with self._counts:
            if severity is Severity.ERROR:
                self.result.errors += 1
            else:
                self.result.warnings += 1
        if self._notify_sink is not None:
            self._notify_sink(Notice(severity, path, message))

    def _count(self, attribute: str, size: int = 0) -> None:
        with self._counts:
            setattr(self.result, attribute, getattr(self.result, attribute) + 1)
            self.result.bytes_total += size

    # --- parent snapshot --------------------------------------------------------------------
    def _parent_children(self, parent: ParentEntry | None) -> Mapping[str, ParentEntry]:
        try:
            subtree = parent.subtree if parent is not None else None
        except IntegrityError:
            return {}
        return self._load_parent_tree(subtree) if subtree is not None else {}

    def _load_parent_tree(self, tree_id: bytes) -> Mapping[str, ParentEntry]:
        if self._parent_loader is None:
            return {}
        try:
            return self._parent_loader.parent_entries(tree_id)
        except Exception:  # noqa: BLE001 - a damaged parent only costs re-reading files
            return {}

    # --- the walk --------------------------------------------------------------------------
    # The walk is written as nested generators (see core/trampoline.py): a directory yields
    # the walk of each subdirectory instead of calling it, so a tree thousands of levels deep
    # costs heap, not stack. Below a requested path every entry is opened relative to its
    # directory's descriptor (sources/files/dirchain.py): no path handed to a system call is
    # longer than one name, however deep the tree.
    def run(self) -> ArchiveResult:
        finisher = threading.Thread(target=self._finish_dirs, name="lifeboat-trees", daemon=True)
        finisher.start()
        try:
            self._sources = _targets(self._options)
            root_parent = self._load_parent_tree(self._parent_tree) if self._parent_tree else {}
            root_children = run_nested(self._virtual_children((), list(self._sources), root_parent))
            self._finish_deferred()
            root = Future[Node | None]()
            self._dir_jobs.put(_DirJob(Node(name="root", type=NodeType.DIR), root_children, root, False))
            self._dir_jobs.put(_DONE)
            node = root.result()
            assert node is not None and node.subtree is not None
            self.result.tree = node.subtree
            return self.result
        except BaseException:
            self._dir_jobs.put(_DONE)
            raise
        finally:
            self._readers.shutdown(wait=True)
            finisher.join()

    def _finish_deferred(self) -> None:
        """Once every file is read: add the late entries, then queue the directories held back."""
        if not self._deferred:
            return
        barrier = _Barrier(
            [c for job, _ in self._deferred for c in job.children if c not in self._deferred_results],
            Future[None](),
        )
        self._dir_jobs.put(barrier)
        barrier.result.result()
        for job, late in self._deferred:
            if late is not None:
                job.extra = tuple(late(job.node))
            self._dir_jobs.put(job)

    def _virtual_children(
        self, prefix: tuple[str, ...], targets: list[tuple[str, ...]], parent: Mapping[str, ParentEntry]
    ) -> Nested[list[Pending]]:
        """Children of an intermediate directory on the way to the requested paths."""
        groups: dict[str, list[tuple[str, ...]]] = {}
        for target in targets:
            groups.setdefault(target[len(prefix)], []).append(target)
        children: list[Pending] = []
        for name in sorted(groups):
            path = (*prefix, name)
            source = self._sources.get(path)
            if source is not None:
                entry = self._requested(source, parent.get(name), self._lstat_dev(source), name=name, at=path)
            else:
                deeper = [t for t in groups[name] if t != path]
                entry = self._intermediate(path, deeper, parent.get(name))
            child = (yield entry) if isinstance(entry, Generator) else entry
            if source is not None:
                self._watch_presence(_abs(source), child)
            children.append(child)
        return children

    def _watch_presence(self, path: str, child: Pending) -> None:
        """Note ``path`` in :attr:`ArchiveResult.absent` when its entry turns out to be missing."""

        def absent() -> None:
            with self._counts:
                self.result.absent.append(path)

        if child is None:
            absent()
        elif isinstance(child, Future):
            child.add_done_callback(lambda f: absent() if f.exception() is None and f.result() is None else None)

    def _lstat_dev(self, path: tuple[str, ...]) -> int:
        try:
            return os.lstat(_abs(path)).st_dev
        except OSError:
            return -1

    def _intermediate(
        self, path: tuple[str, ...], targets: list[tuple[str, ...]], parent: ParentEntry | None
    ) -> Nested[Pending]:
        """A directory on the way to requested paths: the one on disk at the same path, or,
        when paths are placed, a made one."""
        if self._options.places:
            now = time.time_ns()
            made = Node(name=path[-1], type=NodeType.DIR, mode=0o700, mtime_ns=now, atime_ns=now, ctime_ns=now)
            node = replace(self._options.made_dirs.get(path, made), name=path[-1], subtree=None)
        else:
            abs_path = _abs(path)
            try:
                st = os.stat(abs_path)
            except OSError as exc:
                self._notice(Severity.ERROR, abs_path, f"cannot read: {exc.strerror}")
                return None
            node = node_from_stat(path[-1], st, NodeType.DIR, self._owners)
        children = yield self._virtual_children(path, targets, self._parent_children(parent))
        held_back = any(isinstance(c, Future) and c in self._deferred_results for c in children)
        return self._dir_job(node, children, drop_if_empty=False, defer=held_back)

    def _dir_job(
        self,
        node: Node,
        children: list[Pending],
        *,
        drop_if_empty: bool,
        previous: Mapping[str, ParentEntry] | None = None,
        previous_tree: bytes | None = None,
        defer: bool = False,
        late: Callable[[Node], Sequence[Node]] | None = None,
    ) -> Future[Node | None]:
        """Queue the directory for the finisher; ``defer`` (or ``late`` entries) holds it back
        until every file has been read (:meth:`_finish_deferred`)."""
        result = Future[Node | None]()
        job = _DirJob(node, children, result, drop_if_empty, previous or {}, previous_tree)
        if defer or late is not None:
            self._deferred.append((job, late))
            self._deferred_results.add(result)
        else:
            self._dir_jobs.put(job)
        return result

    def _requested(
        self,
        path: tuple[str, ...],
        parent: ParentEntry | None,
        root_dev: int,
        *,
        name: str,
        at: tuple[str, ...],
    ) -> Pending | _Walk:
        """Back up a path named in the request (found by its absolute path) as the entry
        ``name`` of the snapshot tree (at tree path ``at``)."""
        abs_path = _abs(path)
        try:
            st = os.lstat(abs_path)
        except FileNotFoundError:
            self._notice(Severity.WARNING, abs_path, "vanished before it could be read; skipped")
            return None
        except OSError as exc:
            self._notice(Severity.ERROR, abs_path, f"cannot read: {exc.strerror}")
            return None
        kind = node_type(st)
        if kind is None:
            self._notice(Severity.WARNING, abs_path, f"{describe_special(st)} skipped")
            return None
        if kind is NodeType.DIR:
            return self._requested_directory(path, st, parent, root_dev, name=name, late=self._late.get(at))
        if kind is NodeType.FILE:
            try:
                dir_fd = os.open(_abs(path[:-1]), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as exc:
                self._notice(Severity.ERROR, abs_path, f"cannot read: {exc.strerror}")
                return None
            try:
                return self._file(dir_fd, path, st, parent, name=name)
            finally:
                os.close(dir_fd)
        if kind is NodeType.SYMLINK:
            try:
                target = os.readlink(abs_path)
            except OSError as exc:
                self._notice(Severity.ERROR, abs_path, f"cannot read link: {exc.strerror}")
                return None
            return node_from_stat(name, st, kind, self._owners, target=target)
        return node_from_stat(name, st, kind, self._owners)

    def _requested_directory(
        self,
        path: tuple[str, ...],
        st: os.stat_result,
        parent: ParentEntry | None,
        root_dev: int,
        *,
        name: str,
        late: Callable[[Node], Sequence[Node]] | None,
    ) -> _Walk:
        try:
            chain = DirectoryChain(os.open(_abs(path), DIR_FLAGS))
        except OSError as exc:
            self._unopenable(path, exc)
            return None
        try:
            walk = self._directory(chain, path, st, parent, root_dev, drop_if_empty=False, as_name=name, late=late)
            return (yield from walk)
        finally:
            chain.close()

    def _unopenable(self, path: tuple[str, ...], exc: OSError) -> None:
        if isinstance(exc, FileNotFoundError):
            self._notice(Severity.WARNING, _abs(path), "vanished before it could be read; skipped")
        elif exc.errno in (errno.ELOOP, errno.ENOTDIR):  # replaced by a symlink or a file since its stat
            self._notice(Severity.WARNING, _abs(path), "changed type while being backed up; skipped")
        else:
            self._notice(Severity.ERROR, _abs(path), f"cannot list directory: {exc.strerror}")

    def _entry(
        self,
        chain: DirectoryChain,
        path: tuple[str, ...],
        parent: ParentEntry | None,
        root_dev: int,
        *,
        partial: bool = False,
    ) -> Pending | _Walk:
        """Back up the entry ``path[-1]`` of the chain's current directory.

        ``partial`` marks a directory entered only because an include pattern may match
        below it: it is dropped when nothing inside matched.
        """
        name = path[-1]
        try:
            dir_fd = chain.fd
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            self._notice(Severity.WARNING, _abs(path), "vanished before it could be read; skipped")
            return None
        except OSError as exc:
            self._notice(Severity.ERROR, _abs(path), f"cannot read: {exc.strerror}")
            return None
        kind = node_type(st)
        if kind is None:
            self._notice(Severity.WARNING, _abs(path), f"{describe_special(st)} skipped")
            return None
        if kind is NodeType.DIR:
            return self._subdirectory(chain, path, st, parent, root_dev, drop_if_empty=partial)
        if kind is NodeType.FILE:
            return self._file(dir_fd, path, st, parent)
        if kind is NodeType.SYMLINK:
            try:
                target = os.readlink(name, dir_fd=dir_fd)
            except OSError as exc:
                self._notice(Severity.ERROR, _abs(path), f"cannot read link: {exc.strerror}")
                return None
            return node_from_stat(name, st, kind, self._owners, target=target)
        return node_from_stat(name, st, kind, self._owners)

    def _subdirectory(
        self,
        chain: DirectoryChain,
        path: tuple[str, ...],
        st: os.stat_result,
        parent: ParentEntry | None,
        root_dev: int,
        *,
        drop_if_empty: bool,
    ) -> _Walk:
        try:
            chain.enter(path[-1])
        except OSError as exc:
            self._unopenable(path, exc)
            return None
        try:
            return (yield from self._directory(chain, path, st, parent, root_dev, drop_if_empty=drop_if_empty))
        finally:
            chain.leave()

    def _directory(
        self,
        chain: DirectoryChain,
        path: tuple[str, ...],
        st: os.stat_result,
        parent: ParentEntry | None,
        root_dev: int,
        *,
        drop_if_empty: bool,
        as_name: str | None = None,
        late: Callable[[Node], Sequence[Node]] | None = None,
    ) -> _Walk:
        """The directory that is the chain's current one: list it, back up its entries
        (yielding the walk of each subdirectory), and queue its tree for the finisher."""
        node = node_from_stat(as_name or path[-1], st, NodeType.DIR, self._owners)
        children: list[Pending] = []
        if self._options.one_file_system and st.st_dev != root_dev:
            skipped = f"on another file system; contents skipped ({option('one_file_system')})"
            self._notice(Severity.WARNING, _abs(path), skipped)
            return self._dir_job(node, children, drop_if_empty=False)
        filt = self._options.filter
        try:
            names = sorted(os.listdir(chain.fd))
        except OSError as exc:
            self._notice(Severity.ERROR, _abs(path), f"cannot list directory: {exc.strerror}")
            names = []
        previous = self._parent_children(parent)
        previous_tree = _subtree_of(parent) if previous else None
        for name in names:
            if self._failed is not None:  # the finisher failed: the backup is lost, stop walking
                raise self._failed
            child = (*path, name)
            if filt.is_empty:
                entry = self._entry(chain, child, previous.get(name), root_dev)
            elif filt.excluded(child):
                continue
            elif filt.selects(child):
                entry = self._entry(chain, child, previous.get(name), root_dev)
            elif filt.descend(child) and self._is_dir(chain, name):
                entry = self._entry(chain, child, previous.get(name), root_dev, partial=True)
            else:
                continue
            children.append((yield entry) if isinstance(entry, Generator) else entry)
        return self._dir_job(
            node, children, drop_if_empty=drop_if_empty, previous=previous, previous_tree=previous_tree, late=late
        )

    def _is_dir(self, chain: DirectoryChain, name: str) -> bool:
        try:
            return stat.S_ISDIR(os.stat(name, dir_fd=chain.fd, follow_symlinks=False).st_mode)
        except OSError:
            return False

    # --- files -----------------------------------------------------------------------------
    def _file(
        self, dir_fd: int, path: tuple[str, ...], st: os.stat_result, parent: ParentEntry | None, *, name: str = ""
    ) -> Pending:
        """A regular file in the directory ``dir_fd``: taken over from the parent snapshot,
        or read by a reader thread (which gets a copy of ``dir_fd``); stored as ``name``."""
        self._cancel()  # a safe point: between two files
        name = name or path[-1]
        opts = self._options
        recent = opts.reuse_window_ns > 0 and st.st_mtime_ns >= opts.started_ns - opts.reuse_window_ns
        if (
            parent is not None
            and not recent
            and parent.same_file(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        ):
            try:
                content = parent.content
            except IntegrityError:
                content = None  # a damaged parent entry: read the file again
            if content is not None and self._saver.has_blobs(content):
                self._count("files_unmodified", st.st_size)
                self.progress.file_read(st.st_size)
                return _Unchanged(name, st, parent, content, self._owners)
        status = "files_new" if parent is None else "files_changed"
        self._files_in_flight.acquire()
        try:
            job_fd = os.dup(dir_fd)
        except BaseException:
            self._files_in_flight.release()
            raise
        # Whoever pops the descriptor closes it: the reader thread, or this one when submitting
        # fails. Ctrl-C or SIGTERM can land inside submit after the job was queued; closing it
        # here then as well would close it twice (EBADF, or another file's reused descriptor).
        owned = [job_fd]
        try:
            future = self._readers.submit(self._read_owned_file, owned, path, st, status, name)
        except BaseException:
            with contextlib.suppress(IndexError):
                os.close(owned.pop())
            self._files_in_flight.release()
            raise
        future.add_done_callback(lambda _f: self._files_in_flight.release())
        return future

    def _read_owned_file(
        self, owned: list[int], path: tuple[str, ...], st: os.stat_result, status: str, name: str
    ) -> Node | None:
        try:
            dir_fd = owned.pop()
        except IndexError:
            return None  # the walk was interrupted while submitting this job, and closed it
        return self._read_file(dir_fd, path, st, status, name)

    def _open(self, dir_fd: int, name: str) -> int:
        try:
            return os.open(name, _OPEN_FLAGS | _NOATIME, dir_fd=dir_fd)
        except PermissionError as exc:
            if exc.errno != errno.EPERM or not _NOATIME:
                raise
            return os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)  # O_NOATIME needs ownership

    def _read_file(self, dir_fd: int, path: tuple[str, ...], st: os.stat_result, status: str, name: str) -> Node | None:
        """A reader thread's job: owns ``dir_fd``, the descriptor of the file's directory."""
        linked = (st.st_dev, st.st_ino)
        try:
            if st.st_nlink > 1:
                with self._counts:
                    known = self._hardlinks.get(linked)
                if known is not None:
                    self._count(status, st.st_size)
                    self.progress.bytes_read(st.st_size)
                    self.progress.file_done()
                    return node_from_stat(name, st, NodeType.FILE, self._owners, content=known[0], sparse=known[1])
            fd = self._open(dir_fd, path[-1])
        except FileNotFoundError:
            self._notice(Severity.WARNING, _abs(path), "vanished before it could be read; skipped")
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # replaced by a symlink since the walk
                self._notice(Severity.WARNING, _abs(path), "changed type while being backed up; skipped")
                return None
            self._notice(Severity.ERROR, _abs(path), f"cannot read: {exc.strerror}")
            return None
        finally:
            os.close(dir_fd)
        try:
            return self._read_open_file(fd, path, st, status, name)
        finally:
            os.close(fd)

    def _read_open_file(
        self, fd: int, path: tuple[str, ...], st: os.stat_result, status: str, name: str
    ) -> Node | None:
        linked = (st.st_dev, st.st_ino)
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                self._notice(Severity.WARNING, _abs(path), "changed type while being backed up; skipped")
                return None
            ids: list[Future[bytes] | bytes] = []
            settled = 0  # ids[:settled] are blob ids; the rest may still be futures
            size = 0
            block_size = self._options.block_size_for(path) if self._options.block_size_for else 0
            on_block = self._options.on_block if block_size else None
            abs_path = _abs(path) if on_block is not None else ""
            chunked = not block_size and before.st_size >= self._chunker.min_size
            with (
                os.fdopen(fd, "rb", buffering=0, closefd=False) as stream,
                self._chunk_streams if chunked else contextlib.nullcontext(),
                contextlib.ExitStack() as stack,
            ):
                # Closed when the read ends, however it ends: a chunker left to the garbage
                # collector would give its buffer back on whatever thread collects it.
                pieces = stack.enter_context(
                    contextlib.closing(
                        fixed_chunks(stream, block_size) if block_size else self._chunker.chunks(stream, before.st_size)
                    )
                )
                for piece in pieces:
                    if on_block is not None and isinstance(piece, bytes):  # fixed blocks are bytes
                        on_block(abs_path, size, piece)
                    # Hashing runs on the session's workers, so one large file keeps every core
                    # busy; the chunker's view is copied once the session has room for it.
                    ids.append(self._saver.submit_blob(BlobType.DATA, piece))
                    if len(ids) - settled >= _SETTLE_EVERY:
                        settled = _settle(ids, settled)
                    size += len(piece)
                    self.progress.bytes_read(len(piece))
            after = os.fstat(fd)
            content = [blob if isinstance(blob, bytes) else blob.result() for blob in ids]
        except OSError as exc:
            self._notice(Severity.ERROR, _abs(path), f"read failed: {exc.strerror}")
            return None
        if after.st_size != size or after.st_mtime_ns != before.st_mtime_ns:
            self._notice(Severity.WARNING, _abs(path), "changed while being read; the snapshot holds what was read")
        node = node_from_stat(
            name, before, NodeType.FILE, self._owners, content=tuple(content), sparse=is_sparse(before)
        )
        node = replace(node, size=size)
        if st.st_nlink > 1:
            with self._counts:
                self._hardlinks[linked] = (node.content, node.sparse)
        self._count(status, size)
        self.progress.file_done()
        return node

    # --- directories ----------------------------------------------------------------------
    def _reusable_tree(self, job: _DirJob, done: list[Node | _Unchanged]) -> bytes | None:
        """The parent's tree when every entry is what the parent recorded (else None)."""
        previous = job.previous
        if job.previous_tree is None or len(done) != len(previous):
            return None
        for entry in done:
            if isinstance(entry, _Unchanged):
                if not entry.same_as_parent():
                    return None
            else:
                recorded = previous.get(entry.name)
                if recorded is None or not recorded.matches(entry):
                    return None
        return job.previous_tree if self._saver.has_blobs((job.previous_tree,)) else None

    def _finish_dirs(self) -> None:
        while True:
            job = self._dir_jobs.get()
            if job is _DONE:
                return
            if isinstance(job, _Barrier):
                self._pass(job)
                continue
            assert isinstance(job, _DirJob)
            if self._failed is not None:
                job.result.set_exception(self._failed)
                continue
            try:
                done: list[Node | _Unchanged] = []
                for child in job.children:
                    entry = child.result() if isinstance(child, Future) else child
                    if entry is not None:
                        done.append(entry)
                if job.extra:
                    names = {e.name for e in job.extra}
                    done = [e for e in done if e.name not in names] + list(job.extra)
                if job.drop_if_empty and not done:
                    job.result.set_result(None)
                    continue
                tree_id = self._reusable_tree(job, done)
                if tree_id is None:
                    nodes = [e.node() if isinstance(e, _Unchanged) else e for e in done]
                    tree_id = self._saver.save_tree(Tree(tuple(nodes)))
                self._count("dirs")
                self.progress.dir_done()
                job.result.set_result(replace(job.node, subtree=tree_id))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the directory;
                # a finisher that died instead would leave the walk waiting for the root forever
                self._failed = exc
                job.result.set_exception(exc)

    def _pass(self, barrier: _Barrier) -> None:
        if self._failed is not None:
            barrier.result.set_exception(self._failed)
            return
        try:
            for child in barrier.children:
                if isinstance(child, Future):
                    child.result()
            barrier.result.set_result(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the walk, which waits on it
            self._failed = exc
            barrier.result.set_exception(exc)


# A large file's blobs are stored while it is read: every this many, the futures of those
# already stored give way to their ids (a future holds a condition and its locks, some 1.5 KiB:
# a 1 GiB relation file's 8,192 blocks held 12 MiB of them until the file's end).
_SETTLE_EVERY = 256


def _settle(ids: list[Future[bytes] | bytes], start: int) -> int:
    """Replace the futures of ``ids`` from ``start`` that have their blob id by the id, up to the
    first still pending (or failed or cancelled by an aborted session: its error is raised when
    the file's ids are collected); returns where the next call starts."""
    for i in range(start, len(ids)):
        blob = ids[i]
        if isinstance(blob, Future):
            if not blob.done() or blob.cancelled() or blob.exception() is not None:
                return i
            ids[i] = blob.result()
    return len(ids)
