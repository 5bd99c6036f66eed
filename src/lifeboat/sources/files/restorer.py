"""Restoring a snapshot's tree onto disk, safely.

Every entry is created relative to an open directory descriptor with ``O_NOFOLLOW`` /
``O_EXCL``, so neither a hostile snapshot nor a symlink planted in the target can make
the restore write outside it. Blob data is verified as it is read (authenticated
decryption and the keyed id); a file that cannot be restored whole — damaged data, a
storage that cannot be read, anything a worker meets — is removed and reported while the
other files are restored, and :meth:`RestoreResult.failure` gives the command its error.
The walk is iterative and keeps few descriptors whatever the depth; a tree whose shared
subtrees expand beyond the bound is refused first. Sparse files are restored sparse; hard
links are linked; ownership is restored when running as root; directory times are set last.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field

from lifeboat.core.patterns import PathFilter
from lifeboat.core.progress import Notice, NoticeSink, Progress, Severity
from lifeboat.core.protocols import BlobLoader
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.core.treewalk import check_expansion
from lifeboat.errors import IntegrityError, LifeboatError, RestoreRefused, StorageError, UsageError, option
from lifeboat.sources.files.dirchain import DIR_FLAGS, DirectoryChain

# A file larger than this is written by several workers at once, in parts of this size.
PART_BYTES = 32 * 1024 * 1024

_DIR_FLAGS = DIR_FLAGS
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class RestoreOptions:
    target: str
    filter: PathFilter = field(default_factory=PathFilter)
    force: bool = False
    dry_run: bool = False
    workers: int = 2
    restore_owner: bool = field(default_factory=lambda: os.geteuid() == 0)


@dataclass
class RestoreResult:
    """What a restore wrote, and what it could not.

    Every entry that could not be restored is reported as an error notice naming it, and
    counted here: ``damaged`` (the repository's data failed verification), ``unreadable``
    (the storage could not deliver it), and the other errors (writing the target, setting
    metadata) in ``errors``, which counts all three.
    """

    files: int = 0
    dirs: int = 0
    links: int = 0
    bytes: int = 0
    errors: int = 0
    damaged: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "files": self.files,
            "dirs": self.dirs,
            "links": self.links,
            "bytes": self.bytes,
            "errors": self.errors,
            "damaged": self.damaged,
            "unreadable": self.unreadable,
        }

    def describe(self) -> str:
        from lifeboat.core.units import format_bytes

        return f"{self.files} files, {self.dirs} directories, {self.links} links ({format_bytes(self.bytes)})"

    def failure(self) -> LifeboatError | None:
        """The error a restore with failures ends with (None when everything was restored).

        One exit code for a mix of failures, the most severe one: damaged data (13, the
        repository itself is damaged; restoring again cannot help) over unreadable storage
        (14, restoring again once the storage is reachable can) over everything else (1).
        The message counts each kind.
        """
        other = self.errors - len(self.damaged) - len(self.unreadable)
        parts = []
        if self.damaged:
            parts.append(f"{len(self.damaged)} files were not restored because their data is damaged")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} files were not restored because the storage could not be read")
        if other > 0:
            parts.append(f"{other} other entries failed")
        if not parts:
            return None
        message = "; ".join(parts) + " (each is named above)"
        if self.damaged:
            return IntegrityError(message, hint="run 'lifeboat check --read-data' to see what is damaged")
        if self.unreadable:
            return StorageError(
                message,
                hint="check that the storage is reachable and readable with these credentials, then restore again",
            )
        return LifeboatError(
            message, hint=f"fix what the messages above name, then restore again ({option('force')} replaces)"
        )


def check_target(target: str, *, force: bool) -> None:
    """Refuse a target that exists and is not an empty directory (unless forced), and one
    that cannot be a directory at all (an empty path, a path below a file)."""
    if not target:
        raise UsageError("the restore target is an empty path", hint="name the directory to restore into")
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise unusable_target(target, exc) from None
    if not stat.S_ISDIR(st.st_mode):
        raise RestoreRefused(f"restore target {target} exists and is not a directory")
    try:
        if not force and any(True for _ in os.scandir(target)):
            raise RestoreRefused(f"restore target {target} is not empty")
    except OSError as exc:
        raise unusable_target(target, exc) from None


def unusable_target(target: str, exc: OSError) -> LifeboatError:
    """The error for a restore target the system refuses (``FILE/sub``, no permission)."""
    if exc.errno == errno.ENOTDIR:
        parent = os.path.dirname(os.path.normpath(target))
        while parent and parent != os.path.dirname(parent) and not os.path.exists(parent):
            parent = os.path.dirname(parent)
        return UsageError(
            f"restore target {target} cannot be a directory: {parent or target} is not a directory",
            hint="choose a target directory whose parents are directories",
        )
    return LifeboatError(
        f"cannot use restore target {target}: {exc.strerror or exc}",
        hint="choose a directory this user can create and write",
    )


def is_zero(data: bytes) -> bool:
    return not data or (data[0] == 0 and data == bytes(len(data)))


class FileRestorer:
    """Writes one tree (or the filtered part of it) below ``options.target``."""

    def __init__(
        self,
        loader: BlobLoader,
        options: RestoreOptions,
        *,
        progress: Progress | None = None,
        notify: NoticeSink | None = None,
        cancel: Callable[[], None] | None = None,
    ) -> None:
        self._loader = loader
        self._cancel = cancel or (lambda: None)
        self._options = options
        self.progress = progress or Progress()
        self._notify_sink = notify
        self.result = RestoreResult()
        self._lock = threading.Condition()
        self._jobs = 0  # file and part jobs queued or running
        self._pool: ThreadPoolExecutor | None = None
        self._links: dict[tuple[int, int], str] = {}  # (device, inode) -> first path below target
        self._deferred_links: list[tuple[str, str, Node]] = []
        self._slots = threading.BoundedSemaphore(4 * max(1, options.workers) + 16)
        self._dirs: list[tuple[int, int, Node]] = []  # created directories: (parent's index, depth, node)
        self._root_fd = -1
        self._escaped: BaseException | None = None  # an exception no job handled (a bug)

    def _notice(self, severity: Severity, path: str, message: str) -> None:
        if severity is Severity.ERROR:
            with self._lock:
                self.result.errors += 1
        if self._notify_sink is not None:
            self._notify_sink(Notice(severity, path, message))

    # --- entry point ---------------------------------------------------------------------------
    def restore(self, tree: Tree) -> RestoreResult:
        """Restore the entries of ``tree`` (a snapshot's root tree, or part of one).

        A tree whose shared subtrees would expand beyond the bound (core/treewalk.py) is
        refused before anything is written.
        """
        opts = self._options
        check_expansion(self._loader, tree, "the tree to restore")
        if opts.dry_run:
            self._walk(tree, None)
            return self.result
        check_target(opts.target, force=opts.force)
        try:
            os.makedirs(opts.target, exist_ok=True)
        except OSError as exc:
            raise unusable_target(opts.target, exc) from None
        self._root_fd = os.open(opts.target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with ThreadPoolExecutor(max(1, opts.workers), thread_name_prefix="lifeboat-restore") as pool:
                self._pool = pool
                try:
                    with DirectoryChain(os.dup(self._root_fd)) as chain:
                        self._walk(tree, chain)
                finally:
                    self._wait_for_jobs()
            if self._escaped is not None:
                raise self._escaped
            self._link_deferred()
            self._apply_dirs_metadata()
        finally:
            os.close(self._root_fd)
        return self.result

    def _walk(self, tree: Tree, chain: DirectoryChain | None) -> None:
        """Create the entries of ``tree`` below the chain's root (only count them without a chain).

        Iterative, with a stack of directories, so a tree thousands of levels deep is
        restored like any other; the chain holds the descriptors of the created ones. A
        directory entered only because an include pattern may match below it is created
        when the first entry inside it is restored, so no empty directories are left behind.
        """
        filt = self._options.filter
        stack = [_Frame(iter(tree.nodes), None, created=True, index=-1)]
        names: list[str] = []  # the path of the directory on top of the stack
        while stack:
            frame = stack[-1]
            node = next(frame.nodes, None)
            if node is None:
                stack.pop()
                if frame.node is not None:
                    names.pop()
                    if frame.created and chain is not None:
                        chain.leave()
                continue
            path = (*names, node.name) if not filt.is_empty else ()
            if node.type is NodeType.DIR:
                if path and not filt.descend(path):
                    continue
                subtree = self._subtree(node, names)
                if subtree is None:
                    continue
                stack.append(_Frame(iter(subtree.nodes), node, created=False, index=-1))
                names.append(node.name)
                if not path or filt.selects(path):
                    self._create_dirs(stack, names, chain)
                continue
            if path and not filt.selects(path):
                continue
            if not self._create_dirs(stack, names, chain):
                continue  # the directory could not be created (reported)
            rel = "/".join((*names, node.name))
            if chain is None:
                self._count_entry(node)
                continue
            try:
                dir_fd = chain.fd
            except OSError as exc:
                self._notice(Severity.ERROR, rel, f"cannot write: {exc.strerror}")
                continue
            if node.type is NodeType.FILE:
                if node.links > 1:
                    first = self._links.setdefault((node.device, node.inode), rel)
                    if first != rel:
                        self._deferred_links.append((first, "/".join(names), node))
                        continue
                self._submit_file(dir_fd, node, rel)
            else:
                self._restore_special(dir_fd, node, rel)

    def _subtree(self, node: Node, names: list[str]) -> Tree | None:
        """The tree of directory ``node``; None when it cannot be read (reported, and nothing
        below it is restored)."""
        assert node.subtree is not None
        try:
            return self._loader.load_tree(node.subtree)
        except (IntegrityError, StorageError) as exc:
            rel = "/".join((*names, node.name))
            listed = self.result.damaged if isinstance(exc, IntegrityError) else self.result.unreadable
            with self._lock:
                listed.append(rel + "/")
            self._notice(Severity.ERROR, rel + "/", f"cannot read the directory's listing, not restored: {exc}")
            return None

    def _create_dirs(self, stack: list[_Frame], names: list[str], chain: DirectoryChain | None) -> bool:
        """Create the directories on the stack not created yet, outermost first; False when one
        cannot be (reported): it and what is below it are left out of the walk."""
        first = len(stack)
        while not stack[first - 1].created:
            first -= 1
        for i in range(first, len(stack)):
            frame = stack[i]
            assert frame.node is not None
            if chain is not None:
                rel = "/".join(names[:i])
                try:
                    fd = self._make_dir(chain.fd, frame.node.name, rel)
                except OSError as exc:
                    self._notice(Severity.ERROR, rel, f"cannot create directory: {exc.strerror}")
                    fd = -1
                if fd < 0:
                    del stack[i:]
                    del names[i - 1 :]
                    return False
                try:
                    chain.adopt(frame.node.name, fd)
                except BaseException:
                    os.close(fd)
                    raise
                parent = stack[i - 1].index
                frame.index = len(self._dirs)
                self._dirs.append((parent, i, frame.node))
            frame.created = True
            self._count_dir()
        return True

    def _submit_file(self, dir_fd: int, node: Node, rel: str) -> None:
        """Queue the restore of one file; the job owns a slot and a copy of ``dir_fd``."""
        self._cancel()  # a safe point: between two files
        self._slots.acquire()  # bounds queued jobs and the descriptors they hold
        try:
            job_fd = os.dup(dir_fd)
        except BaseException:
            self._slots.release()
            raise
        try:
            self._submit(self._restore_file_job, job_fd, node, rel)
        except BaseException:
            os.close(job_fd)
            self._slots.release()
            raise

    def _link_deferred(self) -> None:
        """Create the second and later names of hard-linked files (one name per system call,
        each directory opened by descriptor: the paths may be longer than PATH_MAX)."""
        for first, parent_rel, node in self._deferred_links:
            rel = f"{parent_rel}/{node.name}" if parent_rel else node.name
            first_parent, _, first_name = first.rpartition("/")
            try:
                src_fd = _open_below(self._root_fd, first_parent)
                try:
                    dir_fd = _open_below(self._root_fd, parent_rel)
                    try:
                        self._clear(dir_fd, node.name)
                        os.link(first_name, node.name, src_dir_fd=src_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
                    finally:
                        os.close(dir_fd)
                finally:
                    os.close(src_fd)
            except OSError as exc:
                self._notice(Severity.ERROR, rel, f"cannot create hard link to {first}: {exc.strerror}")
                continue
            self._count_entry(node)

    def _count_dir(self) -> None:
        with self._lock:
            self.result.dirs += 1
        self.progress.dir_done()

    def _count_entry(self, node: Node) -> None:
        with self._lock:
            if node.type is NodeType.FILE:
                self.result.files += 1
                self.result.bytes += node.size
            else:
                self.result.links += 1
        self.progress.file_done()
        self.progress.bytes_read(node.size)

    # --- creating entries ----------------------------------------------------------------------
    def _make_dir(self, dir_fd: int, name: str, rel: str) -> int:
        try:
            os.mkdir(name, 0o700, dir_fd=dir_fd)
        except FileExistsError:
            if not self._options.force:
                self._notice(Severity.ERROR, rel, f"already exists; skipped (use {option('force')} to overwrite)")
                return -1
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and self._options.force:
                # Something else (a file, a symlink) is in the way: replace it.
                os.unlink(name, dir_fd=dir_fd)
                os.mkdir(name, 0o700, dir_fd=dir_fd)
                return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            self._notice(Severity.ERROR, rel, f"cannot create directory: {exc.strerror}")
            return -1

    def _clear(self, dir_fd: int, name: str) -> None:
        """With ``force``, remove a non-directory entry that is in the way."""
        if not self._options.force:
            return
        with suppress(FileNotFoundError):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=dir_fd)

    def _restore_special(self, dir_fd: int, node: Node, rel: str) -> None:
        try:
            self._clear(dir_fd, node.name)
            if node.type is NodeType.SYMLINK:
                os.symlink(node.target, node.name, dir_fd=dir_fd)
            elif node.type is NodeType.FIFO:
                os.mkfifo(node.name, node.mode, dir_fd=dir_fd)
            self._apply_link_metadata(dir_fd, node)
            self._count_entry(node)
        except OSError as exc:
            self._notice(Severity.ERROR, rel, f"cannot create {node.type.value}: {exc.strerror}")

    def _submit(self, fn: Callable[..., None], *args: object) -> None:
        """Run ``fn`` on the pool; :meth:`restore` waits for every such job to end.

        Jobs report their own failures; whatever still escapes one (a bug) is kept in
        ``_escaped`` and raised by :meth:`restore`, never lost in an unread future.
        """
        with self._lock:
            self._jobs += 1

        def run() -> None:
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - reaches the command through restore()
                with self._lock:
                    if self._escaped is None:
                        self._escaped = exc
            finally:
                self._job_ended()

        assert self._pool is not None
        try:
            self._pool.submit(run)
        except BaseException:
            self._job_ended()
            raise

    def _job_ended(self) -> None:
        with self._lock:
            self._jobs -= 1
            if self._jobs == 0:
                self._lock.notify_all()

    def _wait_for_jobs(self) -> None:
        with self._lock:
            while self._jobs:
                self._lock.wait()

    def _restore_file_job(self, dir_fd: int, node: Node, rel: str) -> None:
        """Create one file and write its data; owns ``dir_fd`` and one of the slots.

        Whatever happens, the descriptor is closed and the slot released exactly once
        (by :meth:`_finish_file` once the file exists), and a failure is reported.
        """
        try:
            self._clear(dir_fd, node.name)
            fd = os.open(node.name, _FILE_FLAGS, 0o600, dir_fd=dir_fd)
        except BaseException as exc:  # noqa: BLE001 - reported as the file's failure
            try:
                self._file_failed(rel, exc)
            finally:
                os.close(dir_fd)
                self._slots.release()
            return
        write = _FileWrite(self, dir_fd, fd, node, rel)
        try:
            parts = self._parts(node)
        except BaseException as exc:  # noqa: BLE001 - reported as the file's failure
            write.start(1)
            write.part_done(0, exc)
            return
        write.start(len(parts))
        for number, (offset, blob_ids) in enumerate(parts[1:], 1):
            try:
                self._submit(self._write_part, write, offset, blob_ids)
            except BaseException as exc:  # noqa: BLE001 - reported as the file's failure
                for _ in parts[number:]:  # never submitted: each still counts as a part done
                    write.part_done(0, exc)
                break
        self._write_part(write, *parts[0])

    def _parts(self, node: Node) -> list[tuple[int, tuple[bytes, ...]]]:
        """The file's blobs in pieces of about :data:`PART_BYTES`, each with its offset, so
        several workers write one large file at once."""
        if node.size <= PART_BYTES or len(node.content) < 2:
            return [(0, node.content)]
        parts: list[tuple[int, tuple[bytes, ...]]] = []
        start_index, start_offset, offset = 0, 0, 0
        for i, size in enumerate(self._loader.raw_lengths(node.content)):
            if offset - start_offset >= PART_BYTES:
                parts.append((start_offset, node.content[start_index:i]))
                start_index, start_offset = i, offset
            offset += size
        parts.append((start_offset, node.content[start_index:]))
        return parts

    def _write_part(self, write: _FileWrite, offset: int, blob_ids: tuple[bytes, ...]) -> None:
        position = offset
        error: BaseException | None = None
        try:
            if not write.failed:  # another part already failed: the file is removed anyway
                for data in self._loader.load_blobs(blob_ids):
                    if write.node.sparse:
                        _pwrite_sparse(write.fd, data, position)
                    else:
                        _pwrite_all(write.fd, data, position)
                    position += len(data)
                    self.progress.bytes_read(len(data))
        except BaseException as exc:  # noqa: BLE001 - every failure is the file's, reported once
            error = exc
        write.part_done(position - offset, error)

    def _finish_file(self, write: _FileWrite, error: BaseException | None) -> None:
        """Called once, by whichever worker ended the last part of the file.

        A file any part of which failed is removed, so nothing incomplete is left looking
        restored; the descriptors are closed and the slot released whatever happens.
        """
        node, rel = write.node, write.rel
        try:
            if error is None:
                try:
                    os.ftruncate(write.fd, write.written)
                except BaseException as exc:  # noqa: BLE001 - reported below, the file removed
                    error = exc
            if error is not None:
                with suppress(OSError):
                    os.unlink(node.name, dir_fd=write.dir_fd)
                self._file_failed(rel, error)
                return
            try:
                self._apply_file_metadata(write.fd, node)
            except BaseException as exc:  # noqa: BLE001 - the data is whole; the metadata is reported
                self._notice(Severity.ERROR, rel, f"cannot set metadata: {_reason(exc)}")
            with self._lock:
                self.result.files += 1
                self.result.bytes += write.written
            self.progress.file_done()
        finally:
            for fd in (write.fd, write.dir_fd):
                with suppress(OSError):
                    os.close(fd)
            self._slots.release()

    def _file_failed(self, rel: str, error: BaseException) -> None:
        """Report a file that was not restored, filed by what went wrong."""
        if isinstance(error, IntegrityError):
            with self._lock:
                self.result.damaged.append(rel)
            self._notice(Severity.ERROR, rel, f"damaged data, file not restored: {error}")
        elif isinstance(error, StorageError):
            with self._lock:
                self.result.unreadable.append(rel)
            self._notice(Severity.ERROR, rel, f"cannot read from the repository, file not restored: {error}")
        else:
            self._notice(Severity.ERROR, rel, f"cannot write: {_reason(error)}")

    # --- metadata ---------------------------------------------------------------------------------
    def _apply_file_metadata(self, fd: int, node: Node) -> None:
        """Owner, mode and times; a refused owner still leaves the mode and times right."""
        refused: OSError | OverflowError | None = None
        if self._options.restore_owner:
            try:
                os.fchown(fd, node.uid, node.gid)
            except (OSError, OverflowError) as exc:
                refused = exc
        os.fchmod(fd, node.mode)
        os.utime(fd, ns=(node.atime_ns, node.mtime_ns))
        if refused is not None:
            raise refused

    def _apply_link_metadata(self, dir_fd: int, node: Node) -> None:
        if self._options.restore_owner:
            os.chown(node.name, node.uid, node.gid, dir_fd=dir_fd, follow_symlinks=False)
        if node.type is not NodeType.SYMLINK:
            os.chmod(node.name, node.mode, dir_fd=dir_fd)
        os.utime(node.name, ns=(node.atime_ns, node.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)

    def _apply_dirs_metadata(self) -> None:
        """Owner, mode and times of every created directory, deepest first (after everything
        was written into them). One chain moves through them in that order, so each directory
        is entered once: no path from the root is opened per directory, however deep."""
        dirs = self._dirs
        on_chain: list[int] = []  # indices into dirs of the chain's levels
        with DirectoryChain(os.dup(self._root_fd)) as chain:
            for index in reversed(range(len(dirs))):
                entering = [index]
                ancestor = dirs[index][0]
                while ancestor >= 0 and not (
                    dirs[ancestor][1] <= len(on_chain) and on_chain[dirs[ancestor][1] - 1] == ancestor
                ):
                    entering.append(ancestor)
                    ancestor = dirs[ancestor][0]
                keep = dirs[ancestor][1] if ancestor >= 0 else 0
                node = dirs[index][2]
                try:
                    while len(on_chain) > keep:
                        chain.leave()
                        on_chain.pop()
                    for entered in reversed(entering):
                        chain.enter(dirs[entered][2].name)
                        on_chain.append(entered)
                    fd = chain.fd
                    if self._options.restore_owner:
                        os.fchown(fd, node.uid, node.gid)
                    os.fchmod(fd, node.mode)
                    os.utime(fd, ns=(node.atime_ns, node.mtime_ns))
                except OSError as exc:
                    self._notice(Severity.ERROR, self._dir_rel(index), f"cannot set metadata: {exc.strerror}")

    def _dir_rel(self, index: int) -> str:
        names: list[str] = []
        while index >= 0:
            parent, _depth, node = self._dirs[index]
            names.append(node.name)
            index = parent
        return "/".join(reversed(names))


@dataclass
class _Frame:
    """A directory of the walk: its entries still to restore."""

    nodes: Iterator[Node]
    node: Node | None  # the directory's own entry (None for the restore's root)
    created: bool  # exists below the target (and is on the chain)
    index: int  # its position in FileRestorer._dirs (-1: the root, or not created)


class _FileWrite:
    """One file being restored, perhaps by several workers writing its parts."""

    def __init__(self, restorer: FileRestorer, dir_fd: int, fd: int, node: Node, rel: str) -> None:
        self.restorer, self.dir_fd, self.fd, self.node, self.rel = restorer, dir_fd, fd, node, rel
        self.written = 0
        self._remaining = 0
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def start(self, parts: int) -> None:
        """Set how many parts must end before the file is finished (before any is written)."""
        self._remaining = parts

    @property
    def failed(self) -> bool:
        return self._error is not None

    def part_done(self, written: int, error: BaseException | None) -> None:
        with self._lock:
            self.written += written
            if error is not None and self._error is None:
                self._error = error
            self._remaining -= 1
            last = self._remaining == 0
        if last:
            self.restorer._finish_file(self, self._error)


def _open_below(root_fd: int, rel: str) -> int:
    """Open the directory ``rel`` below ``root_fd`` one name at a time, following no symlink."""
    fd = os.dup(root_fd)
    try:
        for part in rel.split("/") if rel else ():
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _reason(exc: BaseException) -> str:
    """The part of an exception worth showing after a path."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, LifeboatError):
        return exc.message
    return f"internal error: {type(exc).__name__}: {exc}"


_HOLE_GRAIN = 4096
_ZERO_GRAIN = bytes(_HOLE_GRAIN)


def _pwrite_sparse(fd: int, data: bytes, offset: int) -> None:
    """Write ``data`` at ``offset``, leaving holes where whole 4 KiB blocks are zero."""
    if is_zero(data):
        return
    view = memoryview(data)
    for start in range(0, len(view), _HOLE_GRAIN):
        piece = view[start : start + _HOLE_GRAIN]
        if piece != _ZERO_GRAIN:
            _pwrite_all(fd, piece, offset + start)


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


__all__ = ["FileRestorer", "Notice", "RestoreOptions", "RestoreResult", "check_target"]
