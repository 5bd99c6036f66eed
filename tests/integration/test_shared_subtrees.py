"""Trees that share subtrees: legitimate sharing round-trips; a crafted snapshot whose every
level points twice at the next (26 levels: 2^26 paths from 27 trees, 201 million entries) is
refused at once by restore, ls and diff (exit 13) and reported by check, instead of making
them run for ever."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

from lifeboat.core.ids import BlobType
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession
from lifeboat.storage.local import LocalBackend
from tests.conftest import PASSPHRASE, Cli
from tests.integration.trees import describe

LEVELS = 26


def save_doubling_snapshot(repo: Repository, levels: int) -> str:
    """A snapshot whose root and every directory below hold ``a`` and ``b``, both the same
    subtree, ``levels`` deep, with one file at the bottom."""
    data = b"at the bottom of every path\n"
    with repo.lock(exclusive=False, operation="test"), WriteSession(repo) as session:
        file_id = repo.blob_id(data)
        session.save_blob(BlobType.DATA, data, file_id)
        tree = session.save_tree(Tree((Node("f", NodeType.FILE, size=len(data), content=(file_id,)),)))
        for _ in range(levels):
            shared = Node("a", NodeType.DIR, mode=0o755, subtree=tree)
            tree = session.save_tree(Tree((shared, Node("b", NodeType.DIR, mode=0o755, subtree=tree))))
        session.commit()
    snapshot = Snapshot(time=datetime.now(UTC), source="crafted", kind="files", tree=tree, hostname="x")
    return repo.save_snapshot(snapshot).id


def test_a_snapshot_doubling_at_every_level_is_refused_at_once_and_flagged_by_check(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert cli("init").code == 0
    honest = tmp_path / "honest"
    honest.mkdir()
    (honest / "file").write_text("an ordinary snapshot\n")
    assert cli("backup", str(honest)).code == 0
    repo = Repository.open(LocalBackend(cli_env["LIFEBOAT_REPO"]), PASSPHRASE)
    crafted = save_doubling_snapshot(repo, LEVELS)
    honest_id = next(s.id for s in repo.snapshots() if s.id != crafted)
    target = tmp_path / "target"

    for argv in (
        ("restore", crafted, "--target", str(target)),
        ("restore", crafted, "--target", str(target), "--dry-run"),
        ("ls", crafted),
        ("diff", honest_id, crafted),
        ("diff", crafted, honest_id),
    ):
        started = time.monotonic()
        result = cli(*argv)
        assert result.code == 13, (argv, result)
        assert time.monotonic() - started < 60, argv  # refused up front, not after a long walk
        assert "share subtrees so that a walk would visit 201,326,590 entries" in result.stderr, result
        assert "made of 53 distinct ones in 27 trees" in result.stderr
        assert result.stderr.count("lifeboat: error: ") == 1 and "Traceback" not in result.stderr
        assert result.stdout == ""
        assert not target.exists()

    checked = cli("check")
    assert checked.code == 13, checked
    assert f"error: snapshot {crafted[:8]}: its directories share subtrees" in checked.stdout
    assert "restore, ls and diff refuse it" in checked.stdout
    assert honest_id[:8] not in checked.stdout  # the honest snapshot is fine

    # A smaller doubling snapshot (2^10 paths) is well within the bound: it restores whole.
    small = save_doubling_snapshot(repo, 10)
    assert cli("restore", small, "--target", str(target)).code == 0
    assert sum(len(files) for _d, _s, files in os.walk(target)) == 2**10


def test_a_tree_of_many_identical_directories_round_trips(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    """300 hard-linked copies of one directory (``cp -al``, as rsnapshot-style archives make):
    their entries are identical, so the snapshot stores their tree once and shares it."""
    source = tmp_path / "source"
    original = source / "copy-000"
    original.mkdir(parents=True)
    for j in range(10):
        (original / f"m{j}.py").write_text(f"module {j}\n")
    for i in range(1, 300):
        copy = source / f"copy-{i:03}"
        copy.mkdir()
        for j in range(10):
            os.link(original / f"m{j}.py", copy / f"m{j}.py")
    describe(source)  # settle atimes (relatime) before the backup records them
    before = describe(source)
    assert cli("init").code == 0
    assert cli("backup", str(source)).code == 0
    repo = Repository.open(LocalBackend(cli_env["LIFEBOAT_REPO"]), PASSPHRASE)
    snapshot = repo.snapshots()[-1]
    stored_trees = sum(1 for _blob, loc in repo.index().items() if loc.type == BlobType.TREE)
    assert stored_trees < 10  # the 300 copies share one tree

    assert cli("check").code == 0
    listed = cli("ls", snapshot.id, str(source))
    assert listed.code == 0, listed
    assert len(listed.stdout.splitlines()) == len(before) == 3300
    target = tmp_path / "target"
    restored = cli("restore", snapshot.id, "--target", str(target))
    assert restored.code == 0, restored
    assert describe(target / source.relative_to("/")) == before
