"""``restore postgres`` with a pack the restoring user cannot read: the storage exit code (14,
not a claim of damaged data), every unrestored file named, no half-written file left."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from lifeboat.core.treewalk import walk
from lifeboat.errors import ExitCode
from lifeboat.repository import layout
from lifeboat.sources.tools.pgcluster import chown_tree
from tests.conftest import CliResult
from tests.postgres.conftest import OS_USER, PgWorld, WorldFactory

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-restore-unreadable")]


def as_server_user(world: PgWorld, *args: str) -> CliResult:
    done = subprocess.run(
        [
            "runuser",
            "-u",
            OS_USER,
            "--",
            "env",
            *(f"{k}={v}" for k, v in world.env.items()),
            *shlex.split(world.server_command),
            *args,
        ],
        capture_output=True,
        timeout=300,  # a hang fails the test
        check=False,
        cwd=world.base,
    )
    return CliResult(
        done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"), done.stdout
    )


def test_restore_postgres_from_a_pack_it_cannot_read_fails_with_the_storage_code(worlds: WorldFactory) -> None:
    world = worlds()
    world.cluster.psql("CREATE TABLE t AS SELECT generate_series(1, 50000) AS id")
    world.backup()
    repo = world.repository()
    snapshot = repo.snapshots()[-1]
    uses: Counter[str] = Counter()
    files_in: dict[str, set[str]] = {}
    for path, node in walk(repo, snapshot.tree):
        for blob in node.content:
            pack = layout.pack_name(repo.locate(blob).pack_id.hex())
            uses[pack] += 1
            files_in.setdefault(pack, set()).add(path)
    pack, _ = uses.most_common(1)[0]
    chown_tree(world.repo_dir, OS_USER)  # the backup ran as root
    os.chmod(world.repo_dir / pack, 0o000)
    target = world.new_dir("unreadable")
    target.mkdir()
    chown_tree(target, OS_USER)

    result = as_server_user(world, "restore", "postgres", "--target-dir", str(target), "--immediate")

    assert result.code == ExitCode.STORAGE, result
    assert "lifeboat: error: the restored cluster is incomplete: " in result.stderr
    assert "files were not restored because the storage could not be read" in result.stderr
    assert "damaged" not in result.stderr
    named = [line for line in result.stderr.splitlines() if "cannot read from the repository" in line]
    assert named and all("permission denied" in line for line in named)
    left = {str(Path(d, n).relative_to(target)) for d, _s, ns in os.walk(target) for n in ns}
    unreadable = {p.split("/", 1)[1] for p in files_in[pack] if p.startswith("data/")}
    assert unreadable and not left & unreadable  # none of them is left behind, empty or cut short
