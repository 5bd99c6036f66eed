"""Archived WAL is proven before anyone relies on it (real clusters archiving into a local
repository): ``check`` names a damaged, truncated, swapped or missing WAL object, the
``--read-data-subset`` slices cover the archive, and ``restore postgres`` refuses WAL that
recovery needs and that does not read back whole, before it writes anything."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive
from lifeboat.sources.postgres.pgdata import read_system_id
from lifeboat.sources.tools.pgcluster import chown_tree
from lifeboat.storage.local import LocalBackend
from tests.conftest import PASSPHRASE, CliResult
from tests.postgres.conftest import OS_USER, PgWorld, WorldFactory

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-walverify")]


@dataclass
class Archived:
    """A base backup and six WAL segments switched after it, all archived; the cluster stopped."""

    world: PgWorld
    system_id: str
    segments: list[str]

    def damaged_copy(self, label: str) -> tuple[Path, dict[str, str]]:
        """A copy of the repository to damage, aged past the in-flight margin of ``check``."""
        copy = self.world.base / f"repo-{label}"
        shutil.copytree(self.world.repo_dir, copy)
        chown_tree(copy, OS_USER)
        an_hour_ago = time.time() - 3600
        for path in copy.rglob("*"):
            os.utime(path, (an_hour_ago, an_hour_ago))
        return copy, {"LIFEBOAT_REPO": str(copy)}

    def object_path(self, repo: Path, name: str) -> Path:
        return repo / "wal" / self.system_id / name[:8] / name

    def describe(self, name: str) -> str:
        return f"WAL file {name} of system {self.system_id}"


@pytest.fixture(scope="module")
def archived(worlds: WorldFactory) -> Archived:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE t(id int)")
    c.psql("INSERT INTO t VALUES (0)")
    world.backup()
    segments = []
    for i in range(1, 7):
        c.psql(f"INSERT INTO t VALUES ({i})")
        segments.append(world.switch_wal())
    for name in segments:
        world.wait_archived(name)
    c.stop()
    return Archived(world, read_system_id(c.data_dir), segments)


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the ciphertext
    path.write_bytes(bytes(data))


def wal_errors(result: CliResult) -> dict[str, dict[str, object]]:
    doc = json.loads(result.stdout)
    return {str(p["file"]): p for p in doc["errors"] if p["kind"] == "wal"}


def test_check_read_data_names_a_flipped_byte_in_an_archived_wal_segment(archived: Archived) -> None:
    world = archived.world
    clean = world.lifeboat("--json", "check", "--read-data")
    assert clean.code == 0, clean
    doc = json.loads(clean.stdout)
    assert doc["wal_files"] >= 8  # the backup's segments, its .backup file and the six after it
    assert doc["wal_files_read"] == doc["wal_files"]

    repo, env = archived.damaged_copy("flipped")
    damaged = archived.segments[1]
    flip_byte(archived.object_path(repo, damaged))
    result = world.lifeboat("check", "--read-data", env=env)
    assert result.code == 13, result
    assert (
        f"error: {archived.describe(damaged)}: is damaged: fails authentication (damaged, tampered or another key); "
        "recovery cannot pass it" in result.stdout
    )
    assert "lifeboat copy" in result.stderr and "repair index" not in result.stderr
    as_json = world.lifeboat("--json", "check", "--read-data", env=env)
    assert as_json.code == 13
    problem = wal_errors(as_json)[damaged]
    assert {k: problem[k] for k in ("object", "system_id", "timeline")} == {
        "object": archived.describe(damaged),
        "system_id": archived.system_id,
        "timeline": 1,
    }


def test_check_catches_a_truncated_a_swapped_and_a_resealed_wal_object(archived: Archived) -> None:
    world = archived.world
    repo, env = archived.damaged_copy("swapped")
    truncated, swapped, source, resealed, original = archived.segments[:5]
    path = archived.object_path(repo, truncated)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    archived.object_path(repo, swapped).write_bytes(archived.object_path(repo, source).read_bytes())
    # A valid segment sealed under another name: only its page header tells.
    archive = WalArchive(Repository.open(LocalBackend(repo), PASSPHRASE), archived.system_id)
    archived.object_path(repo, resealed).write_bytes(archive.seal(resealed, archive.fetch(original)))

    result = world.lifeboat("--json", "check", "--read-data", env=env)
    assert result.code == 13, result
    found = wal_errors(result)
    assert sorted(found) == sorted([truncated, swapped, resealed])
    assert "fails authentication" in str(found[truncated]["message"])
    assert f"the object holds {source} (moved or swapped)" in str(found[swapped]["message"])
    assert f"the page header is that of segment {original}" in str(found[resealed]["message"])

    # A truncation to nothing shows without reading any data.
    archived.object_path(repo, archived.segments[5]).write_bytes(b"")
    plain = world.lifeboat("check", env=env)
    assert plain.code == 13, plain
    assert f"{archived.describe(archived.segments[5])}: is 0 bytes, too small" in plain.stdout


def test_check_without_read_data_names_a_missing_segment(archived: Archived) -> None:
    world = archived.world
    assert world.lifeboat("check").code == 0
    repo, env = archived.damaged_copy("missing")
    missing = archived.segments[2]
    archived.object_path(repo, missing).unlink()
    result = world.lifeboat("check", env=env)
    assert result.code == 13, result
    assert (
        f"error: {archived.describe(missing)}: is missing ({missing}) while later WAL of timeline 1 is archived: "
        "recovery cannot pass it" in result.stdout
    )


def test_read_data_subset_slices_together_read_every_wal_file_once(archived: Archived) -> None:
    world = archived.world
    repo, env = archived.damaged_copy("subset")
    damaged = archived.segments[3]
    flip_byte(archived.object_path(repo, damaged))
    read, found, total = 0, [], 0
    for n in (1, 2, 3):
        result = world.lifeboat("--json", "check", "--read-data-subset", f"{n}/3", env=env)
        assert result.code in (0, 13), result
        doc = json.loads(result.stdout)
        total = doc["wal_files"]
        read += doc["wal_files_read"]
        if result.code == 13:
            found.append((n, list(wal_errors(result))))
    assert read == total  # no history files here: each file is in exactly one slice
    assert len(found) == 1 and found[0][1] == [damaged]


def test_restore_refuses_damaged_wal_it_needs_before_writing_and_restores_short_of_it(archived: Archived) -> None:
    world = archived.world
    repo, env = archived.damaged_copy("restore")
    damaged = archived.segments[2]
    flip_byte(archived.object_path(repo, damaged))

    target = world.new_dir("refused")
    refused = world.lifeboat("restore", "postgres", "--target-dir", str(target), env=env)
    assert refused.code == 13, refused
    assert (
        f"lifeboat: error: WAL segment {damaged} (timeline 1, system {archived.system_id}) is damaged and "
        "recovery needs it; nothing was restored" in refused.stderr
    )
    assert "hint: restore from a replica repository made by 'lifeboat copy'" in refused.stderr
    assert not target.exists()

    # Recovery to the end of the backup needs none of it, though PostgreSQL reads ahead into it.
    short = world.new_dir("short-of-damage")
    ok, restored = world.restore(short, "--immediate", "--archive-off", env=env)
    assert ok.code == 0, ok
    assert restored.psql("SELECT count(*) FROM t") == "1"
    restored.stop()
    log = (short / "lifeboat-recovery.log").read_text()
    assert f"warning: archived WAL file {damaged}: fails authentication" in log
    assert "answered as not archived" in log


def test_a_wal_object_the_restore_cannot_read_is_a_storage_error_not_damage(archived: Archived) -> None:
    world = archived.world
    repo, env = archived.damaged_copy("unreadable")
    archived.object_path(repo, archived.segments[0]).chmod(0)
    target = world.new_dir("unreadable")
    env = {**world.env, **env}
    argv = [*shlex.split(world.server_command), "restore", "postgres", "--target-dir", str(target)]
    done = subprocess.run(
        ["runuser", "-u", OS_USER, "--", "env", *(f"{k}={v}" for k, v in env.items()), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 14, done
    assert f"{archived.segments[0]}: permission denied" in done.stderr
    assert not target.exists()


def test_a_timeline_that_began_mid_segment_verifies_in_check_and_restore(worlds: WorldFactory) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE t(id int)")
    c.psql("INSERT INTO t VALUES (1)")
    world.backup()
    lsn = c.psql("SELECT pg_current_wal_insert_lsn()")
    c.psql("INSERT INTO t VALUES (2)")
    world.wait_archived(world.switch_wal())
    c.stop()
    first, branch = world.restore(world.new_dir("branch"), "--lsn", lsn, "--archive")  # timeline 2, archived
    assert first.code == 0, first
    branch.psql("INSERT INTO t VALUES (3)")
    world.wait_archived(world.switch_wal(branch))
    world.wait_archived("00000002.history")
    branch.stop()

    checked = world.lifeboat("--json", "check", "--read-data")
    assert checked.code == 0, checked
    doc = json.loads(checked.stdout)
    assert doc["wal_files_read"] == doc["wal_files"]
    assert [w for w in doc["warnings"] if w["kind"] == "wal"] == []

    # Latest follows timeline 2 through the segment it began in, whose first page is timeline 1's.
    again, restored = world.restore(world.new_dir("on-branch"), "--archive-off")
    assert again.code == 0, again
    assert restored.psql("SELECT id FROM t ORDER BY id").splitlines() == ["1", "3"]
    restored.stop()
