"""A directory tree 5,000 levels deep (paths far beyond PATH_MAX) backs up, checks, lists,
diffs, restores exactly and copies: no walk is recursive, no system call gets a long path.

Anyone who can write into a backed-up tree can make it this deep; a recursive walk made the
whole backup fail (``RecursionError``) from about 490 levels, and restore, ls and diff from
about 980.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.operations.copy import copy_snapshots
from lifeboat.operations.maintenance import check
from lifeboat.repository.check import DataSubset
from lifeboat.repository.repo import Repository
from lifeboat.storage.local import LocalBackend
from tests.conftest import FAST_KDF, PASSPHRASE, Cli
from tests.integration.deeptree import MTIME_NS, build_chain, describe, remove_tree

DEPTH = 5000


@pytest.fixture
def deep(tmp_path: Path) -> Iterator[Path]:
    """A place for deep trees, emptied by descriptor afterwards (pytest's cleanup could not)."""
    yield tmp_path
    for child in tmp_path.iterdir():
        if child.is_dir() and not child.is_symlink():
            remove_tree(child)


def deepest(root: Path) -> tuple[int, Path]:
    """A descriptor of the deepest directory below ``root`` (found name by name) and its path."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(DEPTH):
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        os.close(fd)
        fd = child
    return fd, root.joinpath(*(["d"] * DEPTH))


def test_a_tree_5000_levels_deep_backs_up_checks_lists_diffs_restores_and_copies(
    cli: Cli, cli_env: dict[str, str], deep: Path
) -> None:
    source = deep / "source"
    build_chain(source, DEPTH)
    before = describe(source)
    assert len(before) > DEPTH
    assert cli("init").code == 0

    first = cli("--json", "backup", str(source))
    assert first.code == 0, first
    checked = cli("check", "--read-data")
    assert checked.code == 0, checked

    listed = cli("ls", "latest")
    assert listed.code == 0, listed
    lines = listed.stdout.splitlines()
    _fd, bottom = deepest(source)
    os.close(_fd)
    # depth first, by name: the chain below d first, each level's f and link on the way back up
    assert lines.index(str(bottom)) + 1 == lines.index(f"{bottom}/f")
    assert lines[-2:] == [f"{source}/f", f"{source}/link"]
    assert len(lines) == len(before) + len(source.parts) - 1

    # Change the deepest file's content (its directory's times are put back): one change.
    fd, _ = deepest(source)
    try:
        f = os.open("f", os.O_WRONLY | os.O_TRUNC, dir_fd=fd)
        os.write(f, b"changed at the bottom\n")
        os.close(f)
        os.utime(fd, ns=(MTIME_NS, MTIME_NS + DEPTH))
    finally:
        os.close(fd)
    assert cli("backup", str(source)).code == 0
    ids = [s.id for s in Repository.open(LocalBackend(cli_env["LIFEBOAT_REPO"]), PASSPHRASE).snapshots()]
    diff = cli("diff", ids[0], ids[1])
    assert diff.code == 0, diff
    changes = [line for line in diff.stdout.splitlines() if line[:3] in ("M  ", "+  ", "-  ", "U  ")]
    assert [c for c in changes if not c.startswith("U  ")] == [f"M  {bottom}/f"]
    assert all(not c.startswith(f"U  {source}/") for c in changes)  # only the temporary dirs above it

    target = deep / "restored"
    restored = cli("restore", "latest", "--target", str(target))
    assert restored.code == 0, restored
    assert describe(target / source.relative_to("/")) == describe(source)

    repo = Repository.open(LocalBackend(cli_env["LIFEBOAT_REPO"]), PASSPHRASE)
    copy = Repository.init(LocalBackend(deep / "copy"), PASSPHRASE, kdf=FAST_KDF)
    assert len(copy_snapshots(repo, copy, wal=False).copied) == 2
    assert check(copy, read_data=DataSubset()).ok
