"""A repository in a directory of the local filesystem (or any mounted one).

Objects are files; a name's ``/`` separators are directories. Publishing is atomic:
write a temporary file beside the target, fsync it, rename (or hard-link, for
put-if-absent) it into place, then fsync the directory so the new entry survives a
power cut. Every file and directory created gets the repository's owner and modes
(:mod:`lifeboat.storage.ownership`), so root and the database's user can share one; a
refused access names the path that refused it and its owner.
"""

from __future__ import annotations

import builtins
import errno
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from contextlib import suppress
from pathlib import Path

from lifeboat.core.tokens import token_hex
from lifeboat.errors import (
    StorageAlreadyExists,
    StorageError,
    StorageNotFound,
    StoragePermissionDenied,
    StorageQuotaExceeded,
    TransientStorageError,
)
from lifeboat.storage.base import STREAM_PIECE, TEMP_PREFIX, ObjectInfo, check_name, check_temporary_name
from lifeboat.storage.ownership import AccessFindings, TreeOwner, access_problems, permission_denied
from lifeboat.storage.url import Options, StorageUrl

_QUOTA_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.ETIMEDOUT, errno.ESTALE}


def _translate(exc: OSError, what: str, root: Path | None = None, *, write: bool = False) -> StorageError:
    if isinstance(exc, FileNotFoundError):
        return StorageNotFound(f"{what}: no such object")
    if isinstance(exc, PermissionError):
        if root is not None:
            return permission_denied(root, what, exc, write=write)
        return StoragePermissionDenied(f"{what}: permission denied")
    if exc.errno in _QUOTA_ERRNOS:
        return StorageQuotaExceeded(f"{what}: no space left on the storage")
    if exc.errno in _TRANSIENT_ERRNOS:
        return TransientStorageError(f"{what}: {exc.strerror}")
    return StorageError(f"{what}: {exc.strerror or exc}")


def _unless_vanished(exc: OSError) -> None:
    """``os.walk``'s error handler: a directory removed while listing is no error, others are."""
    if not isinstance(exc, FileNotFoundError):
        raise exc


class LocalBackend:
    """Objects as files below ``root``."""

    # One writer keeps a local disk busy; more would only hold more packs in memory.
    connections = 1

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self._root = Path(root).absolute()
        self._prefix = f"{self._root}/".replace("//", "/")  # for the hot read path: no Path objects
        self._fsync = fsync
        self._owner: TreeOwner | None = None  # learned at the first write

    @property
    def location(self) -> str:
        return str(self._root)

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, name: str) -> Path:
        return self._root / check_name(name)

    def get(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except IsADirectoryError as exc:
            raise StorageNotFound(f"{name}: no such object") from exc
        except OSError as exc:
            raise _translate(exc, name, self._root) from exc

    def _open_range(self, name: str, offset: int, length: int) -> int:
        """A descriptor to read object ``name`` from (a range's arguments checked first)."""
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        try:
            return os.open(self._prefix + check_name(name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise _translate(exc, name, self._root) from exc

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        fd = self._open_range(name, offset, length)
        try:
            parts: list[bytes] = []
            remaining = length
            while remaining > 0:
                part = os.pread(fd, remaining, offset)
                if not part:
                    break
                parts.append(part)
                offset += len(part)
                remaining -= len(part)
            return b"".join(parts)
        except OSError as exc:
            raise _translate(exc, name) from exc
        finally:
            os.close(fd)

    def get_stream(self, name: str, offset: int, length: int) -> Iterator[bytes]:
        """The range in pieces of :data:`STREAM_PIECE`, from one open of the file."""
        fd = self._open_range(name, offset, length)
        try:
            end = offset + length
            while offset < end:
                try:
                    piece = os.pread(fd, min(STREAM_PIECE, end - offset), offset)
                except OSError as exc:
                    raise _translate(exc, name) from exc
                if not piece:
                    return
                offset += len(piece)
                yield piece
        finally:
            os.close(fd)

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        path = self._path(name)
        directory = path.parent
        tmp = directory / f"{TEMP_PREFIX}{token_hex(8)}"
        try:
            owner = self._learn_owner()
            fd = self._create(tmp, owner)
            try:
                owner.settle_file(fd, path)
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if if_absent:
                try:
                    os.link(tmp, path)
                except FileExistsError as exc:
                    raise StorageAlreadyExists(f"{name}: object already exists") from exc
                finally:
                    tmp.unlink()
            else:
                os.replace(tmp, path)
            if self._fsync:
                self._fsync_dir(directory)
        except OSError as exc:
            with suppress(OSError):
                tmp.unlink()
            raise _translate(exc, name, self._root, write=True) from exc
        except BaseException:  # a storage error, Ctrl-C or SIGTERM: leave no temporary file behind
            with suppress(OSError):
                tmp.unlink()  # gone already after a refused put-if-absent
            raise

    def stage(self, prefix: str) -> LocalStaged:
        """A temporary file in the directory of ``prefix``, renamed into place by publish."""
        directory = self._path(prefix.rstrip("/") + "/x").parent
        tmp = directory / f"{TEMP_PREFIX}{token_hex(8)}"
        try:
            owner = self._learn_owner()
            fd = self._create(tmp, owner)
        except OSError as exc:
            raise _translate(exc, prefix, self._root, write=True) from exc
        staged = LocalStaged(self, tmp, fd)
        try:
            owner.settle_file(fd, tmp)
        except BaseException:
            staged.discard()
            raise
        return staged

    def _publish(self, tmp: Path, name: str) -> None:
        """Rename the staged file ``tmp`` to object ``name`` (its directories made first)."""
        path = self._path(name)
        try:
            try:
                os.replace(tmp, path)
            except FileNotFoundError:
                if not tmp.exists():
                    raise
                self._make_directories(path.parent, self._learn_owner())
                os.replace(tmp, path)
            if self._fsync:
                self._fsync_dir(path.parent)
        except OSError as exc:
            raise _translate(exc, name, self._root, write=True) from exc

    def _learn_owner(self) -> TreeOwner:
        if self._owner is None:
            self._root.mkdir(parents=True, exist_ok=True)  # a new repository belongs to its creator
            self._owner = TreeOwner.learn(self._root)
        return self._owner

    def _create(self, tmp: Path, owner: TreeOwner) -> int:
        """Open the new temporary file ``tmp``, creating its directories when they are missing."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            return os.open(tmp, flags, owner.file_mode)
        except FileNotFoundError:
            self._make_directories(tmp.parent, owner)
            return os.open(tmp, flags, owner.file_mode)

    def _make_directories(self, directory: Path, owner: TreeOwner) -> None:
        if directory == self._root or directory.is_dir():
            return
        self._make_directories(directory.parent, owner)
        owner.make_directory(directory, directory.parent / f"{TEMP_PREFIX}{token_hex(8)}")

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except OSError as exc:
            raise _translate(exc, name, self._root, write=True) from exc

    def stat(self, name: str) -> ObjectInfo:
        try:
            st = self._path(name).stat()
        except OSError as exc:
            raise _translate(exc, name, self._root) from exc
        if not stat.S_ISREG(st.st_mode):
            raise StorageNotFound(f"{name}: no such object")
        return ObjectInfo(name, st.st_size, st.st_mtime)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self._walk(prefix, temporaries=False)

    def list_names(self, prefix: str = "") -> Iterator[str]:
        """The names :meth:`list` gives, without a ``stat`` of each file (ten times faster on
        a hundred thousand WAL files, storage.base.NameListing)."""
        return self._name_lists(prefix)

    def _name_lists(self, prefix: str) -> Iterator[str]:
        """:meth:`_names`' object names, built a directory at a time by one comprehension (a
        generator step per file costs more than the walk itself on a hundred thousand)."""
        for _dirpath, head, filenames in self._directories(prefix):
            names = [head + f for f in filenames if not f.startswith(TEMP_PREFIX)]
            yield from names if head.startswith(prefix) else [n for n in names if n.startswith(prefix)]

    def temporaries(self) -> Iterator[ObjectInfo]:
        return self._walk("", temporaries=True)

    def remove_temporary(self, name: str) -> None:
        check_temporary_name(name)
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _translate(exc, name, self._root, write=True) from exc

    def _walk(self, prefix: str, *, temporaries: bool) -> Iterator[ObjectInfo]:
        """Objects below the directory ``prefix`` points into (or only temporary files).

        A directory this process may not read fails the listing: skipping it would make
        its objects look missing (an integrity error) when the fault is a permission.
        """
        for name, directory, filename in self._names(prefix, temporaries=temporaries):
            try:
                st = os.stat(f"{directory}/{filename}")  # os.walk gives the directory without a trailing slash
            except FileNotFoundError:
                continue  # deleted while listing
            except OSError as exc:
                raise _translate(exc, f"list {prefix or '/'}", self._root) from exc
            yield ObjectInfo(name, st.st_size, st.st_mtime)

    def directory_stamps(self, prefix: str) -> dict[str, int]:
        """The modification times of the directory ``prefix`` names and of those directly in it
        (storage.base.DirectoryStamps): a ``stat`` each, not a listing of their files."""
        base = self._root / check_name(prefix.rstrip("/"))
        try:
            stamps = {"": base.stat().st_mtime_ns}
            with os.scandir(base) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stamps[f"{entry.name}/"] = entry.stat(follow_symlinks=False).st_mtime_ns
        except FileNotFoundError:
            if not self._root.exists():
                raise StorageNotFound(f"{self._root}: no such directory") from None
            return {}
        except OSError as exc:
            raise _translate(exc, f"list {prefix}", self._root) from exc
        return stamps

    def directories(self, prefix: str) -> builtins.list[str]:
        """The directories directly below ``prefix`` that hold an object (storage.base.ListsDirectories;
        a directory emptied by deletes is not one, as on object storage)."""
        try:
            with os.scandir(self._root / check_name(prefix.rstrip("/"))) as entries:
                return sorted(
                    f"{prefix}{entry.name}/"
                    for entry in entries
                    if entry.is_dir(follow_symlinks=False) and _holds_an_object(entry.path)
                )
        except FileNotFoundError:
            if not self._root.exists():
                raise StorageNotFound(f"{self._root}: no such directory") from None
            return []
        except OSError as exc:
            raise _translate(exc, f"list {prefix}", self._root) from exc

    def _names(self, prefix: str, *, temporaries: bool) -> Iterator[tuple[str, str, str]]:
        """(object name, directory, file name) below the directory ``prefix`` points into, sorted."""
        for dirpath, head, filenames in self._directories(prefix):
            whole = head.startswith(prefix)  # every name here matches: no test per file
            for filename in filenames:
                if filename.startswith(TEMP_PREFIX) != temporaries:
                    continue
                name = head + filename
                if whole or name.startswith(prefix):
                    yield name, dirpath, filename

    def _directories(self, prefix: str) -> Iterator[tuple[str, str, Sequence[str]]]:
        """(directory, its object-name head such as ``data/ab/``, its sorted file names) for each
        directory below the one ``prefix`` points into, in name order."""
        head, _, _ = prefix.rpartition("/")
        start = self._root / head if head else self._root
        try:
            if not start.is_dir():
                if not self._root.exists():
                    raise StorageNotFound(f"{self._root}: no such directory")
                return
            for dirpath, dirnames, filenames in os.walk(start, onerror=_unless_vanished):
                dirnames.sort()
                rel_dir = os.path.relpath(dirpath, self._root)
                filenames.sort()
                yield dirpath, "" if rel_dir == "." else f"{rel_dir}/", filenames
        except OSError as exc:
            raise _translate(exc, f"list {prefix or '/'}", self._root) from exc

    def space(self) -> tuple[int, int]:
        """(free bytes, size bytes) of the file system holding the repository (storage.base.SpaceReport)."""
        try:
            st = os.statvfs(self._root)
        except OSError as exc:
            raise _translate(exc, "statvfs", self._root) from exc
        return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize

    def access_problems(self, *, limit: int = 1000) -> AccessFindings:
        """What this process cannot read or write in the repository (see :mod:`lifeboat.storage.ownership`)."""
        if not self._root.exists():
            raise StorageNotFound(f"{self._root}: no such directory")
        return access_problems(self._root, limit=limit)

    def close(self) -> None:
        return None


# --- the provider (lifeboat.storage.registry) ---------------------------------------------------
def check(url: StorageUrl) -> None:
    """A local repository takes no provider options."""
    Options(url, ())


def connect(url: StorageUrl, env: Mapping[str, str]) -> LocalBackend:
    """The directory ``url`` names; reads nothing from ``env``."""
    check(url)
    return LocalBackend(url.path)


def _holds_an_object(directory: str) -> bool:
    """Whether any file below ``directory`` is an object (not a temporary file); stops at the
    first, without reading the rest of a directory (``os.walk`` would read a hundred thousand
    WAL file names before answering)."""
    pending = [directory]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif not entry.name.startswith(TEMP_PREFIX):
                        return True
        except FileNotFoundError:
            continue  # removed while looking
    return False


class LocalStaged:
    """A staged object on local disk: a temporary file written as it comes, fsynced and renamed
    into place when published; removed when discarded or when anything fails."""

    def __init__(self, backend: LocalBackend, tmp: Path, fd: int) -> None:
        self._backend, self._tmp, self._fd = backend, tmp, fd

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self.discard()
            raise _translate(exc, str(self._tmp.name), self._backend.root, write=True) from exc

    def publish(self, name: str) -> None:
        try:
            if self._backend._fsync:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            self._backend._publish(self._tmp, name)
        except OSError as exc:
            self.discard()
            raise _translate(exc, name, self._backend.root, write=True) from exc
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        if self._fd >= 0:
            with suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        with suppress(OSError):
            self._tmp.unlink()
