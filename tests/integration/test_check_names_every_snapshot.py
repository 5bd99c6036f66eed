"""A lost pack is named for every snapshot that needs it. Snapshots of unchanged data share
their trees, and the mark phase reads a shared tree once: before, only the first snapshot
to reach it was named, so an operator who forgot the snapshots `check` named still had a
damaged one, and `prune` went on refusing."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.repository.check import Checker
from lifeboat.repository.reachability import mark
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession
from lifeboat.storage.local import LocalBackend
from tests.conftest import FAST_KDF, PASSPHRASE, Cli
from tests.integration.test_damage import pack_holding


def test_every_snapshot_sharing_a_lost_pack_is_named_and_forgetting_them_lets_prune_run(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.bin").write_bytes(os.urandom(200_000))
    assert cli("init", "--kdf-memory", "8MiB", "--kdf-iterations", "1").code == 0
    for _ in range(3):  # unchanged: the snapshots share the source directory's tree
        assert cli("backup", str(source)).code == 0
    repo = Path(cli_env["LIFEBOAT_REPO"])
    opened = Repository.open(LocalBackend(repo), PASSPHRASE)
    ids = sorted(s.id[:8] for s in opened.snapshots())
    pack_holding(repo, source / "a.bin").unlink()

    checked = cli("check")
    assert checked.code == 13, checked
    for snapshot_id in ids:
        assert f"error: snapshot {snapshot_id}: {source}/a.bin needs blob" in checked.stdout, checked
        assert f"snapshot {snapshot_id}: snapshot {snapshot_id}" not in checked.stdout  # named once per line

    refused = cli("prune")
    assert refused.code == 13
    assert "refusing to prune" in refused.stderr
    assert cli("repair", "index").code == 0  # the index stops listing the lost pack (docs/runbook.md §6)
    assert cli("forget", *ids).code == 0
    assert cli("prune").code == 0, "prune refused: a damaged snapshot was not named"
    assert cli("check").code == 0


def test_a_blob_missing_below_a_million_shared_paths_is_listed_a_thousand_times_and_counted(
    tmp_path: Path,
) -> None:
    repo = Repository.init(LocalBackend(tmp_path / "repo"), PASSPHRASE, kdf=FAST_KDF)
    never_stored = repo.blob_id(b"this blob was never stored")
    levels = 20
    with repo.lock(exclusive=False, operation="test"), WriteSession(repo) as session:
        tree = session.save_tree(Tree((Node("f", NodeType.FILE, size=1, content=(never_stored,)),)))
        for _ in range(levels):  # every level points twice at the next: 2^20 paths, 21 trees
            a, b = (Node(name, NodeType.DIR, mode=0o755, subtree=tree) for name in "ab")
            tree = session.save_tree(Tree((a, b)))
        session.commit()
    first = repo.save_snapshot(Snapshot(time=datetime.now(UTC), source="x", kind="files", tree=tree, hostname="h"))
    second = repo.save_snapshot(Snapshot(time=datetime.now(UTC), source="y", kind="files", tree=tree, hostname="h"))

    started = time.monotonic()
    reach = mark(repo, repo.snapshots())
    assert time.monotonic() - started < 30
    listed = 1000  # reachability.MISSING_LISTED, per snapshot
    for snapshot in (first, second):
        mine = [m for m in reach.missing if m.snapshot == snapshot.id]
        assert len(mine) == listed
        assert mine[0].path == "a/" * levels + "f" and mine[0].blob == never_stored
        assert reach.unlisted[snapshot.id] == 2**levels - listed

    result = Checker(repo).run()  # check says how many more each snapshot needs
    more = [(p.object, p.message) for p in result.errors if "more blobs" in p.message]
    assert sorted(more) == sorted(
        (f"snapshot {s.id[:8]}", f"needs {2**levels - listed} more blobs that are missing or damaged (not listed)")
        for s in (first, second)
    )
