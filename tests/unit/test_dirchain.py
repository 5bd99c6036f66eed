"""The directory chain: deep walks with few descriptors, and no wrong directory after a move."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from lifeboat.sources.files.dirchain import DirectoryChain


def same(fd: int, path: Path) -> bool:
    st, expected = os.fstat(fd), os.stat(path)
    return (st.st_dev, st.st_ino) == (expected.st_dev, expected.st_ino)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_walk_deeper_than_its_budget_holds_few_descriptors_and_climbs_back(tmp_path: Path) -> None:
    names = [f"level-{i}" for i in range(300)]
    tmp_path.joinpath(*names).mkdir(parents=True)
    before = open_fds()
    chain = DirectoryChain(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY), budget=8)
    for name in names:
        chain.enter(name)
        assert open_fds() - before <= 8
    assert chain.depth == 300 and same(chain.fd, tmp_path.joinpath(*names))
    for depth in range(299, -1, -1):
        chain.leave()  # each closed level comes back as '..' of the one below
        assert same(chain.fd, tmp_path.joinpath(*names[:depth]))
        assert open_fds() - before <= 9
    chain.close()
    assert open_fds() == before


def test_a_directory_replaced_while_walked_is_never_taken_for_the_original(tmp_path: Path) -> None:
    (tmp_path / "x" / "y" / "z").mkdir(parents=True)
    chain = DirectoryChain(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY), budget=2)
    for name in ("x", "y", "z"):
        chain.enter(name)  # with a budget of 2, only the root and the current level stay open
    os.rename(tmp_path / "x" / "y", tmp_path / "y")  # y leaves x ...
    os.rename(tmp_path / "x", tmp_path / "x-old")
    (tmp_path / "x").mkdir()  # ... and another directory takes x's name
    chain.leave()
    assert same(chain.fd, tmp_path / "y")  # '..' of z is still y, wherever it went
    chain.leave()  # '..' of y is now the root, not x; from the root, "x" is another directory
    with pytest.raises(OSError) as refused:
        _ = chain.fd
    assert refused.value.errno == errno.ESTALE
    chain.close()
