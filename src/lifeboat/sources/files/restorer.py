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

import ctypes
import errno
import os
import resource
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field

from lifeboat.core.ids import short
from lifeboat.core.packreads import BlobWrite, FileBlobs, PackRead, plan_reads
from lifeboat.core.patterns import PathFilter
from lifeboat.core.progress import Notice, NoticeSink, Progress, Severity
from lifeboat.core.protocols import PackLoader, TreeSource
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.core.treewalk import check_expansion
from lifeboat.errors import IntegrityError, LifeboatError, RestoreRefused, StorageError, UsageError, option
from lifeboat.sources.files.dirchain import DIR_FLAGS, DirectoryChain

# Files are restored in batches whose reads are planned together (core/packreads.py): a
# batch takes this many files, blobs or directories at most, so the plan's memory and the
# descriptors held stay bounded whatever the tree. While one batch is read the next is planned.
# A file in flight costs about 1 KiB (its entry, its blobs' places): 2048 files a batch keep a
# restore of the 2.6 GiB bench tree at 71 MiB RSS (8192: 88 MiB), for 39 pack reads instead of 35.
BATCH_FILES = 2048
BATCH_BLOBS = 16384
BATCH_DIRS = 1024
BATCHES_IN_FLIGHT = 2
# One read of a pack brings at most this much (streamed: only a piece and a blob are held at
# a time); neighbouring needed blobs less than MAX_GAP apart are read with the bytes between.
MAX_READ = 64 * 1024 * 1024  # beyond a pack (32 MiB): one request per pack a batch needs
MAX_GAP = 1024 * 1024

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
        loader: PackLoader,
        options: RestoreOptions,
        *,
        progress: Progress | None = None,
        notify: NoticeSink | None = None,
        cancel: Callable[[], None] | None = None,
        trees: TreeSource | None = None,
    ) -> None:
        self._loader = loader
        self._trees = trees  # the walk's reader of trees (one of the loader's when not given)
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
        self._batch: list[_File] = []  # files taken in, their reads not planned yet
        self._batch_blobs = 0
        self._batch_dirs = 0
        self._batch_number = 0  # of the batch being filled
        self._batches_reading = 0
        self._limits = _Limits(BATCH_FILES, BATCH_BLOBS, BATCH_DIRS)
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
        if self._trees is None:
            self._trees = self._loader.tree_source()
        check_expansion(self._trees, tree, "the tree to restore")
        if opts.dry_run:
            self._walk(tree, None)
            return self.result
        check_target(opts.target, force=opts.force)
        try:
            os.makedirs(opts.target, exist_ok=True)
        except OSError as exc:
            raise unusable_target(opts.target, exc) from None
        self._limits = _Limits.for_descriptors(_open_file_limit())
        self._root_fd = os.open(opts.target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with ThreadPoolExecutor(max(1, opts.workers), thread_name_prefix="lifeboat-restore") as pool:
                self._pool = pool
                try:
                    with DirectoryChain(os.dup(self._root_fd)) as chain:
                        self._walk(tree, chain)
                    self._flush()
                finally:
                    self._drop_batch()
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
        stack = [_Frame(iter(tree.nodes), None, created=True, index=-1)]
        try:
            self._walk_stack(stack, chain)
        finally:
            for frame in stack:  # the walk stopped early: let go of its directories
                frame.let_go()

    def _walk_stack(self, stack: list[_Frame], chain: DirectoryChain | None) -> None:
        filt = self._options.filter
        names: list[str] = []  # the path of the directory on top of the stack
        while stack:
            frame = stack[-1]
            node = next(frame.nodes, None)
            if node is None:
                stack.pop()
                frame.let_go()
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
                self._add_file(frame, dir_fd, node, rel)
            else:
                self._restore_special(dir_fd, node, rel)

    def _subtree(self, node: Node, names: list[str]) -> Tree | None:
        """The tree of directory ``node``; None when it cannot be read (reported, and nothing
        below it is restored). Its own subdirectories' trees are asked for together: when
        they are no longer held (a snapshot whose trees exceed the reader's budget), one
        read by pack brings them, not one per directory."""
        assert node.subtree is not None and self._trees is not None
        try:
            tree = self._trees.load_tree(node.subtree)
            self._trees.prefetch_trees(n.subtree for n in tree.nodes if n.subtree is not None)
            return tree
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

    def _add_file(self, frame: _Frame, dir_fd: int, node: Node, rel: str) -> None:
        """Take one file into the batch whose reads are planned together (an empty one is
        created at once); the batch is sent to the workers when it is full."""
        self._cancel()  # a safe point: between two files
        handle = frame.handle
        if handle is None:
            handle = frame.handle = _Dir(os.dup(dir_fd))
        if handle.batch != self._batch_number:
            handle.batch = self._batch_number
            self._batch_dirs += 1
        handle.hold()
        file = _File(handle, node, rel)
        if not node.content:
            self._finish(file)  # nothing to read: created, given its metadata, closed
            return
        self._batch.append(file)
        self._batch_blobs += len(node.content)
        if (
            len(self._batch) >= self._limits.files
            or self._batch_blobs >= self._limits.blobs
            or self._batch_dirs >= self._limits.dirs
        ):
            self._flush()

    def _flush(self) -> None:
        """Plan the reads of the batch and send them to the workers, once fewer than
        :data:`BATCHES_IN_FLIGHT` earlier batches are still being read."""
        files, self._batch = self._batch, []
        self._batch_number += 1
        self._batch_blobs = self._batch_dirs = 0
        if not files:
            return
        with self._lock:
            while self._batches_reading >= BATCHES_IN_FLIGHT:
                self._lock.wait()
        located: list[FileBlobs] = []
        for number, file in enumerate(files):
            try:
                locations = self._loader.locate_data(file.node.content)
            except BaseException as exc:  # noqa: BLE001 - the file's failure (a blob the index lacks)
                file.fail(exc)
                self._finish(file)
                continue
            file.length = sum(location.raw_length for location in locations)
            file.remaining = len(file.node.content)
            located.append(FileBlobs(number, file.node.content, locations))
        reads = plan_reads(located, max_read=MAX_READ, max_gap=MAX_GAP)
        if not reads:
            return
        batch = _Batch(self, len(reads))
        with self._lock:
            self._batches_reading += 1
        for number, read in enumerate(reads):
            try:
                self._submit(self._read_job, files, read, batch)
            except BaseException as exc:
                for unsent in reads[number:]:  # each still ends, failing its files
                    self._read_job(files, unsent, batch, failure=exc)
                raise

    def _drop_batch(self) -> None:
        """Release a batch never sent (the walk stopped): none of its files was created."""
        for file in self._batch:
            file.dir.release()
        self._batch = []

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

    def _read_job(
        self, files: list[_File], read: PackRead, batch: _Batch, *, failure: BaseException | None = None
    ) -> None:
        """Read one range of a pack and write each blob it brings wherever the batch's files
        need it. Blobs the read could not bring fail their files with the read's error."""
        delivered = 0
        try:
            if failure is None:
                for blob, data in self._loader.read_pack_blobs(read):
                    self._deliver(files, blob, data)
                    delivered += 1
        except BaseException as exc:  # noqa: BLE001 - the files still waiting for this read fail with it
            failure = exc
        finally:
            if delivered < len(read.blobs):
                reason = failure or IntegrityError(f"pack {short(read.pack_id)} ended before the blobs it lists")
                for blob in read.blobs[delivered:]:
                    self._deliver(files, blob, reason)
            batch.read_done()

    def _deliver(self, files: list[_File], blob: BlobWrite, data: bytes | BaseException) -> None:
        """Write one blob at each of its places (or fail those files with its error); a file
        whose last place this was is finished. Never raises: every failure is a file's."""
        for number, offset in blob.targets:
            file = files[number]
            if isinstance(data, BaseException):
                file.fail(data)
            elif not file.failed:
                try:
                    fd = self._opened(file)
                    if file.node.sparse:
                        _pwrite_sparse(fd, data, offset)
                    else:
                        _pwrite_all(fd, data, offset)
                    self.progress.bytes_read(len(data))
                except BaseException as exc:  # noqa: BLE001 - reported as the file's failure
                    file.fail(exc)
            if file.place_done():
                self._finish(file)

    def _opened(self, file: _File) -> int:
        """The file's descriptor, creating it at its first write (``O_EXCL``: never a file
        that was there, unless ``force`` removed it first)."""
        with file.lock:
            if file.fd < 0:
                self._clear(file.dir.fd, file.node.name)
                file.fd = os.open(file.node.name, _FILE_FLAGS, 0o600, dir_fd=file.dir.fd)
                if not file.node.sparse:
                    _preallocate(file.fd, file.length)
            return file.fd

    def _finish(self, file: _File) -> None:
        """End one file, once: set its length and metadata, or — if anything failed — remove
        what was written, so nothing incomplete is left looking restored, and report it.
        Its descriptor is closed and its directory released whatever happens."""
        node, rel = file.node, file.rel
        error = file.error
        try:
            if error is None:
                try:
                    fd = self._opened(file)  # an empty file, or one of holes only
                    os.ftruncate(fd, file.length)
                except BaseException as exc:  # noqa: BLE001 - reported below, the file removed
                    error = exc
            if error is not None:
                if file.fd >= 0:  # created by this restore: remove it
                    with suppress(OSError):
                        os.unlink(node.name, dir_fd=file.dir.fd)
                self._file_failed(rel, error)
                return
            try:
                self._apply_file_metadata(file.fd, node)
            except BaseException as exc:  # noqa: BLE001 - the data is whole; the metadata is reported
                self._notice(Severity.ERROR, rel, f"cannot set metadata: {_reason(exc)}")
            with self._lock:
                self.result.files += 1
                self.result.bytes += file.length
            self.progress.file_done()
        finally:
            if file.fd >= 0:
                with suppress(OSError):
                    os.close(file.fd)
            file.dir.release()

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
    handle: _Dir | None = None  # its descriptor for the files restored into it, once there is one

    def let_go(self) -> None:
        """The walk leaves the directory: its descriptor stays open while its files need it."""
        if self.handle is not None:
            self.handle.release()
            self.handle = None


class _Dir:
    """A directory that files are created in: one descriptor, shared by the walk (while it is
    in the directory) and the files of it still being restored, closed when all let go."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        # The number of the batch that last counted it: a number, not the batch's list of files,
        # which hold this directory (a cycle would keep every finished file's records alive
        # until the collector's rare full passes: all of a restore's files, in the end).
        self.batch = -1
        self._users = 1  # the walk
        self._lock = threading.Lock()

    def hold(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            os.close(self.fd)


class _File:
    """One file being restored: where it goes, and how many of its blobs' places are still to write."""

    __slots__ = ("dir", "error", "fd", "length", "lock", "node", "rel", "remaining")

    def __init__(self, directory: _Dir, node: Node, rel: str) -> None:
        self.dir, self.node, self.rel = directory, node, rel
        self.fd = -1
        self.length = node.size
        self.remaining = 0
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    @property
    def failed(self) -> bool:
        return self.error is not None

    def fail(self, error: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = error

    def place_done(self) -> bool:
        """Count one place written (or given up); True for the last one."""
        with self.lock:
            self.remaining -= 1
            return self.remaining == 0


class _Batch:
    """The reads of one batch of files: the restorer waits on the batches still being read."""

    def __init__(self, restorer: FileRestorer, reads: int) -> None:
        self._restorer, self._left = restorer, reads

    def read_done(self) -> None:
        restorer = self._restorer
        with restorer._lock:
            self._left -= 1
            if self._left == 0:
                restorer._batches_reading -= 1
                restorer._lock.notify_all()


@dataclass(frozen=True)
class _Limits:
    """How much one batch takes in: files, blobs and directories (descriptors) at a time."""

    files: int
    blobs: int
    dirs: int

    @classmethod
    def for_descriptors(cls, available: int) -> _Limits:
        """Limits that keep the descriptors of every batch in flight below ``available``
        (each file open while it is written, each directory of a batch held)."""
        share = max(16, (available - 128) // (2 * BATCHES_IN_FLIGHT))
        return cls(files=min(BATCH_FILES, share), blobs=BATCH_BLOBS, dirs=min(BATCH_DIRS, share))


def _open_file_limit() -> int:
    """How many descriptors this process may open: the soft limit, raised to the hard one
    (capped) when it is lower, as a restore holds one per file being written."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    except (OSError, ValueError):
        return 1024
    return 65536 if soft == resource.RLIM_INFINITY else soft


_libc = ctypes.CDLL(None, use_errno=True)
_fallocate = getattr(_libc, "fallocate64", None) or getattr(_libc, "fallocate", None)
if _fallocate is not None:
    _fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    _fallocate.restype = ctypes.c_int
PREALLOCATE_FROM = 1024 * 1024  # smaller files gain nothing from reserving their blocks first


def _preallocate(fd: int, length: int) -> None:
    """Reserve the file's blocks before its blobs arrive out of order (a relation file is
    laid out in one piece, not in the order packs were read). ``fallocate`` only: where the
    file system cannot, nothing is done (``posix_fallocate`` would write zeros instead)."""
    if _fallocate is not None and length >= PREALLOCATE_FROM:
        _fallocate(fd, 0, 0, length)


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
