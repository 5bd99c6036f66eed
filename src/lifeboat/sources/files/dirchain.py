"""Going down and back up a directory tree by descriptor, however deep, with few descriptors.

The archiver and the restorer open every entry relative to its directory's descriptor, so
no system call gets a path longer than one name: a tree may be deeper than PATH_MAX (4096
bytes) allows a path to be. A descriptor per level would exhaust the process's limit on a
deep tree, so a :class:`DirectoryChain` keeps at most ``budget`` of them open — the root's
and the deepest levels'. Going back up to a level whose descriptor was closed reopens it as
``..`` of the level below, accepted only if it is the directory recorded on the way down
(device and inode); if the tree was moved meanwhile, the level is reopened from the root,
name by name, each checked the same way, and if that does not lead back to the same
directories either, :attr:`DirectoryChain.fd` raises ``OSError`` (``ESTALE``).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
DEFAULT_BUDGET = 64


@dataclass
class _Level:
    name: str
    fd: int  # -1 while closed to save descriptors
    device: int
    inode: int


class DirectoryChain:
    """The directories from a root down to the current one; owns every descriptor in it."""

    def __init__(self, root_fd: int, *, budget: int = DEFAULT_BUDGET) -> None:
        st = os.fstat(root_fd)
        self._levels = [_Level("", root_fd, st.st_dev, st.st_ino)]
        self._budget = max(2, budget)
        self._open = 1
        self._first_open = 1  # levels[1:_first_open] are closed; the deeper ones are open

    @property
    def depth(self) -> int:
        """Levels below the root (0 at the root)."""
        return len(self._levels) - 1

    @property
    def fd(self) -> int:
        """The current directory's descriptor (valid until the chain moves)."""
        if self._levels[-1].fd < 0:
            self._reopen_from_root()
        return self._levels[-1].fd

    def enter(self, name: str) -> int:
        """Open the subdirectory ``name`` of the current one (never through a symlink) and make it current."""
        fd = os.open(name, DIR_FLAGS, dir_fd=self.fd)
        try:
            self.adopt(name, fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def adopt(self, name: str, fd: int) -> None:
        """Make ``fd``, the subdirectory ``name`` of the current one opened by the caller, current."""
        st = os.fstat(fd)
        if self._levels[-1].fd < 0:  # the current level is closed: everything above it is too
            self._first_open = len(self._levels)
        self._levels.append(_Level(name, fd, st.st_dev, st.st_ino))
        self._open += 1
        while self._open > self._budget and self._first_open < len(self._levels) - 1:
            evicted = self._levels[self._first_open]
            if evicted.fd >= 0:
                os.close(evicted.fd)
                evicted.fd = -1
                self._open -= 1
            self._first_open += 1

    def leave(self) -> None:
        """Go back up to the parent of the current directory."""
        if len(self._levels) == 1:
            raise ValueError("already at the root of the chain")
        child = self._levels.pop()
        parent = self._levels[-1]
        try:
            if parent.fd < 0 and child.fd >= 0:
                self._reopen_as_dotdot(child.fd, parent)
        finally:
            if child.fd >= 0:
                os.close(child.fd)
                self._open -= 1
        self._first_open = min(self._first_open, len(self._levels))
        if parent.fd >= 0 and len(self._levels) > 1:
            self._first_open = min(self._first_open, len(self._levels) - 1)

    def close(self) -> None:
        for level in self._levels:
            if level.fd >= 0:
                os.close(level.fd)
                level.fd = -1
        self._levels = self._levels[:1]
        self._open = 0

    def __enter__(self) -> DirectoryChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reopening ---------------------------------------------------------------------------
    def _reopen_as_dotdot(self, child_fd: int, parent: _Level) -> None:
        try:
            fd = os.open("..", DIR_FLAGS, dir_fd=child_fd)
        except OSError:
            return  # reopened from the root when it is needed
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (parent.device, parent.inode):
            os.close(fd)  # moved: reopened from the root when it is needed
            return
        parent.fd = fd
        self._open += 1

    def _reopen_from_root(self) -> None:
        """Reopen the current level from the nearest open one above it, name by name."""
        top = len(self._levels) - 1
        start = top
        while self._levels[start].fd < 0:
            start -= 1
        fd = self._levels[start].fd
        for i in range(start + 1, top + 1):
            level = self._levels[i]
            try:
                child = os.open(level.name, DIR_FLAGS, dir_fd=fd)
            finally:
                if i - 1 != start:
                    os.close(fd)
            st = os.fstat(child)
            if (st.st_dev, st.st_ino) != (level.device, level.inode):
                os.close(child)
                raise OSError(errno.ESTALE, "the directory was moved or replaced while it was being walked")
            fd = child
        self._levels[top].fd = fd
        self._open += 1
        self._first_open = top


__all__ = ["DIR_FLAGS", "DirectoryChain"]
