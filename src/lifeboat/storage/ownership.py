"""Who owns a directory repository, and how what Lifeboat creates in it keeps that owner.

A local repository is often shared by two OS users: the database's user, whose
``archive_command`` pushes WAL into it, and root, who runs backups and maintenance. A file
root created would belong to root and, private as repository files are, be unreadable to
the database's user: archiving would stop. So the repository's owner is learned from its
root directory, and a process running as root creates every file and directory with that
owner. Modes follow the repository: files get the mode of its ``config`` (``0600`` unless
the administrator opened it to a group), directories that of the root directory.

A process running as a *third* user, whose files the owner could not read, refuses to
write at all (:class:`~lifeboat.errors.StoragePermissionDenied`, naming the owner).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import grp
import os
import pwd
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lifeboat.errors import StoragePermissionDenied

FILE_MODE = 0o600
_ACL_DEFAULT = "system.posix_acl_default"
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _load_renameat2() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2  # glibc 2.28 and later
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    function.restype = ctypes.c_int
    rename: Callable[..., int] = function
    return rename


_renameat2 = _load_renameat2()


def rename_without_replacing(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; FileExistsError when ``target`` exists, whatever it is.

    ``rename`` would silently replace an empty directory, one another thread has just made and
    is about to create a file in. Where the kernel or the filesystem cannot rename without
    replacing, the check and the rename are two steps (a window remains).
    """
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(code, os.strerror(code), str(source), None, str(target))
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def describe(path: str | os.PathLike[str]) -> str:
    """``owned by owner:group, mode 0600`` for ``path`` (or why it cannot be told)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"({exc.strerror or exc})"
    return f"owned by {user_name(st.st_uid)}:{group_name(st.st_gid)}, mode {stat.S_IMODE(st.st_mode):04o}"


def current_user() -> str:
    return user_name(os.geteuid())


@dataclass(frozen=True)
class TreeOwner:
    """The owner and modes everything created below a repository's root must have."""

    root: Path
    uid: int
    gid: int
    file_mode: int
    dir_mode: int
    adopt: bool  # this process is root and the repository is not: chown what it creates

    @classmethod
    def learn(cls, root: Path) -> TreeOwner:
        """Read the owner and modes of the existing directory ``root``."""
        st = os.stat(root)
        try:
            config_mode = stat.S_IMODE(os.stat(root / "config").st_mode)
        except OSError:
            config_mode = FILE_MODE
        owner = cls(
            root=root,
            uid=st.st_uid,
            gid=st.st_gid,
            # Owner read/write always; group read only where the administrator gave it.
            file_mode=FILE_MODE | (config_mode & 0o040),
            dir_mode=stat.S_IMODE(st.st_mode) & 0o2777,
            adopt=os.geteuid() == 0 and st.st_uid != 0,
        )
        owner._refuse_unreadable_files(st)
        return owner

    @property
    def owner(self) -> str:
        return f"{user_name(self.uid)}:{group_name(self.gid)}"

    def _refuse_unreadable_files(self, root_stat: os.stat_result) -> None:
        """Refuse to write as a user whose files the repository's owner could not read."""
        me = os.geteuid()
        if me in (0, self.uid) or self.uid == 0 or _has_default_acl(self.root):
            return
        try:
            entry = pwd.getpwuid(self.uid)
        except KeyError:
            return  # an owner unknown here: nothing to judge by
        file_gid = root_stat.st_gid if root_stat.st_mode & stat.S_ISGID else os.getegid()
        if self.file_mode & 0o040 and file_gid in os.getgrouplist(entry.pw_name, entry.pw_gid):
            return
        raise StoragePermissionDenied(
            f"the repository {self.root} belongs to {entry.pw_name}; files written to it as {current_user()} "
            f"would be unreadable to {entry.pw_name}",
            hint=f"run lifeboat as {entry.pw_name} or as root (which keeps the owner), or share the repository "
            "through a group (docs/storage.md, 'Who owns a local repository')",
        )

    # --- creating ----------------------------------------------------------------------------
    def settle_file(self, fd: int, path: Path) -> None:
        """Give a file this process just created the repository's owner and mode."""
        if self.adopt:
            try:
                os.fchown(fd, self.uid, self.gid)
            except OSError as exc:
                raise self._cannot_give(path, exc) from exc
        if self.file_mode != FILE_MODE:
            os.fchmod(fd, self.file_mode)  # a umask must not take the group's read away

    def _cannot_give(self, path: Path, exc: OSError) -> StoragePermissionDenied:
        """Root may not change owners here (CAP_CHOWN dropped, an NFS export squashing root)."""
        owner = user_name(self.uid)
        return StoragePermissionDenied(
            f"{path}: cannot give it to the repository's owner {self.owner} ({exc.strerror or exc})",
            hint=f"root may not change owners here (a container without CAP_CHOWN, an NFS export squashing root): "
            f"run lifeboat as {owner}",
        )

    def make_directory(self, path: Path, temporary: Path) -> None:
        """Create the directory ``path`` with the repository's owner and mode.

        As root it is made under the name ``temporary``, given its owner and moved into
        place, so that another process never sees it owned by root. An existing ``path``
        is not an error.
        """
        if not self.adopt:
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, self.dir_mode & 0o777)
                os.chmod(path, self.dir_mode)  # a umask must not take the group's access away
            return
        os.mkdir(temporary, 0o700)
        try:
            try:
                os.chown(temporary, self.uid, self.gid)
            except OSError as exc:
                raise self._cannot_give(path, exc) from exc
            os.chmod(temporary, self.dir_mode)
            rename_without_replacing(temporary, path)
        except (OSError, StoragePermissionDenied):
            with contextlib.suppress(OSError):
                os.rmdir(temporary)
            if not path.is_dir():  # another thread or process made it meanwhile: theirs stays
                raise


def _has_default_acl(path: Path) -> bool:
    try:
        os.getxattr(path, _ACL_DEFAULT)
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class AccessProblem:
    """A file or directory of the repository this process may not use as it must."""

    path: str  # below the repository root ("" for the root itself)
    need: str  # read | write
    owner: str  # owned by owner:group, mode 0600

    def to_json(self) -> dict[str, str]:
        return {"path": self.path or ".", "need": self.need, "owner": self.owner}

    def describe(self) -> str:
        return f"cannot {self.need} {self.path or '.'} ({self.owner})"


def blame(root: Path, path: Path, *, write: bool) -> Path:
    """The first directory on the way to ``path``, or ``path`` itself, this process may not use."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return path
    current = root
    chain = [root]
    for part in parts[:-1]:
        current = current / part
        chain.append(current)
    for directory in chain:
        if not os.access(directory, os.X_OK):
            return directory
    if write and not os.access(path.parent, os.W_OK | os.X_OK):
        return path.parent
    if os.path.lexists(path) and not os.access(path, os.R_OK):
        return path
    return path


@dataclass(frozen=True)
class AccessFindings:
    """The first problems found (up to a limit), how many there are in all, and how many entries were checked."""

    problems: list[AccessProblem]
    total: int
    checked: int


def access_problems(root: Path, *, limit: int = 1000) -> AccessFindings:
    """What this process cannot read (files) or read and write (directories) below ``root``.

    ``os.access`` asks the kernel as this process's real user, so ACLs and read-only
    mounts count.
    """
    problems: list[AccessProblem] = []
    found = 0
    checked = 0

    def note(path: str, need: str) -> None:
        nonlocal found
        found += 1
        if len(problems) < limit:
            problems.append(AccessProblem(os.path.relpath(path, root) if path != str(root) else "", need,
                                          describe(path)))  # fmt: skip

    pending = [str(root)]
    while pending:
        directory = pending.pop()
        checked += 1
        if not os.access(directory, os.R_OK | os.X_OK):
            note(directory, "read")
            continue
        if not os.access(directory, os.W_OK):
            note(directory, "write")
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except FileNotFoundError:
            continue
        except PermissionError:
            note(directory, "read")
            continue
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                pending.append(entry.path)
                continue
            checked += 1
            if not os.access(entry.path, os.R_OK):
                note(entry.path, "read")
    return AccessFindings(problems, found, checked)


def permission_denied(root: Path, what: str, exc: PermissionError, *, write: bool) -> StoragePermissionDenied:
    """The error for a refused access to ``what``: which path refused, its owner and mode, and the fix."""
    failed = Path(exc.filename) if exc.filename else root / what
    culprit = blame(root, failed, write=write)
    me = current_user()
    message = f"{what}: permission denied ({culprit} is {describe(culprit)}; lifeboat runs as {me})"
    try:
        st = os.stat(root)
    except OSError:
        return StoragePermissionDenied(message)
    owner, group = user_name(st.st_uid), group_name(st.st_gid)
    if st.st_uid == 0 or culprit == root:
        hint = f"the repository {root} belongs to {owner}: run lifeboat as its owner, or give it to that user"
    else:
        hint = (
            f"the repository {root} belongs to {owner}, and everything in it must too: "
            f"'chown -R {owner}:{group} {root}' as root (docs/postgres.md, 'Who owns the repository')"
        )
    return StoragePermissionDenied(message, hint=hint)
