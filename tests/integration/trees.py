"""Building sample directory trees and comparing trees with their metadata."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path


def make_mixed_tree(root: Path, *, seed: int = 1, files: int = 60) -> None:
    """A small tree with every kind of entry the files source handles."""
    rng = random.Random(seed)
    (root / "docs" / "deep" / "er").mkdir(parents=True)
    (root / "media").mkdir()
    (root / "empty-dir").mkdir()
    for i in range(files):
        folder = root / rng.choice(["docs", "docs/deep", "docs/deep/er", "media", "."])
        size = rng.choice([0, 1, 100, 4096, 70_000, 300_000])
        data = rng.randbytes(size) if i % 3 else (f"line {i}\n" * (size // 8 + 1)).encode()[:size]
        (folder / f"file-{i}.bin").write_bytes(data)
    (root / "docs" / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "docs" / "script.sh").chmod(0o755)
    (root / "docs" / "secret.txt").write_text("top secret\n")
    (root / "docs" / "secret.txt").chmod(0o600)
    (root / "docs" / "sticky").mkdir(mode=0o1777)
    (root / "docs" / "sticky").chmod(0o1777)
    os.symlink("../docs/script.sh", root / "media" / "link-to-script")
    os.symlink("/nonexistent/target", root / "media" / "dangling")
    os.link(root / "docs" / "secret.txt", root / "media" / "hardlink-to-secret")
    with open(root / "sparse.img", "wb") as f:
        f.truncate(64 * 1024 * 1024)
        f.seek(10 * 1024 * 1024)
        f.write(b"data in the middle of a hole")
    os.mkfifo(root / "a-fifo")
    os.utime(root / "docs" / "deep", ns=(1_600_000_000_123_456_789, 1_600_000_000_987_654_321))
    os.utime(
        root / "media" / "link-to-script",
        ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000),
        follow_symlinks=False,
    )


def describe(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything a restore must reproduce, per path (directories' atimes excepted).

    Every entry is stat'ed before any file is read, because a read may move the atime
    (relatime) of a file and of its hard links. Call it once on a fresh source tree
    before the backup, so the backup records the settled atimes.
    """
    stats: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            stats[str(path.relative_to(root))] = os.lstat(path)
    out: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, str] = {}
    for rel, st in sorted(stats.items()):
        path = root / rel
        entry: tuple[object, ...] = (
            stat.S_IFMT(st.st_mode),
            stat.S_IMODE(st.st_mode),
            st.st_uid,
            st.st_gid,
            st.st_mtime_ns,
        )
        if stat.S_ISREG(st.st_mode):
            first = inodes.setdefault(st.st_ino, rel) if st.st_nlink > 1 else rel
            entry += (path.read_bytes(), st.st_atime_ns, first)
        elif stat.S_ISLNK(st.st_mode):
            entry += (os.readlink(path),)
        out[rel] = entry
    return out


def allocated_bytes(path: Path) -> int:
    return os.stat(path).st_blocks * 512
