"""Directory trees deeper than PATH_MAX allows a path to be: build, describe and remove them
by descriptor, one name per system call (``os.walk`` and ``shutil.rmtree`` cannot)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MTIME_NS = 1_600_000_000_123_456_789


def build_chain(root: Path, depth: int, *, every: int = 50) -> None:
    """``root/d/d/…/d`` ``depth`` levels deep: a file ``f`` every ``every`` levels, a symlink and
    a different mode now and then, and every directory's times set."""
    root.mkdir(parents=True)
    fd = os.open(root, _DIR)
    try:
        for level in range(depth + 1):
            if level % every == 0:
                f = os.open("f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640, dir_fd=fd)
                os.write(f, f"level {level}\n".encode())
                os.utime(f, ns=(MTIME_NS, MTIME_NS + level))
                os.close(f)
            if level % 333 == 0:
                os.symlink("f" if level % every == 0 else "../f", "link", dir_fd=fd)
            if level < depth:
                os.mkdir("d", 0o750 if level % 7 == 0 else 0o755, dir_fd=fd)
            os.utime(fd, ns=(MTIME_NS, MTIME_NS + level))  # no entry is added to it after this
            if level < depth:
                child = os.open("d", _DIR, dir_fd=fd)
                os.close(fd)
                fd = child
    finally:
        os.close(fd)


def describe(root: Path) -> list[tuple[object, ...]]:
    """Every entry below ``root`` in depth-first name order: depth, name, type, mode, mtime, and
    the bytes of a file or the target of a link. Equal lists mean equal trees."""
    out: list[tuple[object, ...]] = []
    stack = [(os.open(root, _DIR), iter(sorted(os.listdir(root))))]
    try:
        while stack:
            fd, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(fd)
                stack.pop()
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            entry: tuple[object, ...] = (len(stack), name, stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode))
            if stat.S_ISLNK(st.st_mode):
                out.append((*entry, os.readlink(name, dir_fd=fd)))
            elif stat.S_ISREG(st.st_mode):
                f = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
                with os.fdopen(f, "rb") as stream:
                    out.append((*entry, st.st_mtime_ns, stream.read()))
            else:
                out.append((*entry, st.st_mtime_ns))
                child = os.open(name, _DIR, dir_fd=fd)
                stack.append((child, iter(sorted(os.listdir(child)))))
    finally:
        for fd, _names in stack:
            os.close(fd)
    return out


def remove_tree(root: Path) -> None:
    """Remove ``root`` and everything below it, however deep."""
    if not root.exists():
        return
    stack = [(os.open(root, _DIR), "")]
    while stack:
        fd, _name = stack[-1]
        descended = False
        for entry in os.listdir(fd):
            st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                os.chmod(entry, 0o700, dir_fd=fd)
                stack.append((os.open(entry, _DIR, dir_fd=fd), entry))
                descended = True
                break
            os.unlink(entry, dir_fd=fd)
        if descended:
            continue
        os.close(fd)
        stack.pop()
        if stack:
            os.rmdir(_name, dir_fd=stack[-1][0])
    os.rmdir(root)
