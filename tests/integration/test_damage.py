"""Damaged repositories: check names the damage, unaffected data still restores, repair works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.e2e.test_failed_source import Nobody

MiB = 1024 * 1024


@pytest.fixture
def two_snapshots(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two sources in separate snapshots (so each lives in its own packs)."""
    repo = Path(cli_env["LIFEBOAT_REPO"])
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "a.bin").write_bytes(os.urandom(3 * MiB))
    (first / "b.txt").write_text("unaffected text\n" * 1000)
    (second / "c.bin").write_bytes(os.urandom(2 * MiB))
    assert cli("init").code == 0
    assert cli("backup", str(first)).code == 0
    assert cli("backup", str(second)).code == 0
    return repo, first, second


def pack_holding(repo: Path, file: Path) -> Path:
    """The pack that holds the first data blob of ``file`` in its latest snapshot."""
    from lifeboat.core.treewalk import find
    from lifeboat.repository.repo import Repository
    from lifeboat.storage.local import LocalBackend
    from tests.conftest import PASSPHRASE

    opened = Repository.open(LocalBackend(repo), PASSPHRASE)
    snapshot = [s for s in opened.snapshots() if str(file.parent) in s.paths][-1]
    node = find(opened, snapshot.tree, str(file))
    assert node is not None and node.content
    pack_id = opened.locate(node.content[0]).pack_id.hex()
    return repo / "data" / pack_id[:2] / pack_id


def test_a_flipped_byte_in_a_pack_is_named_and_unaffected_files_restore(
    cli: Cli, two_snapshots: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    repo, first, second = two_snapshots
    damaged = pack_holding(repo, first / "a.bin")
    data = bytearray(damaged.read_bytes())
    data[len(data) // 3] ^= 0x40
    damaged.write_bytes(bytes(data))

    quick = cli("check")  # structure only: sizes still match, so nothing is visible yet
    assert quick.code == 0, quick
    full = cli("check", "--read-data")
    assert full.code == 13, full
    assert f"pack {damaged.name[:8]}" in full.stdout
    assert "is damaged" in full.stdout
    assert "does not match its name" in full.stdout
    assert f"{first}/a.bin" in full.stdout  # the damaged file is named
    assert "lifeboat: error: the repository has" in full.stderr

    # the other snapshot restores fine
    ok = cli("restore", f"latest:{second}", "--path", str(second), "--target", str(tmp_path / "r2"))
    assert ok.code == 0, ok
    assert (tmp_path / "r2" / "c.bin").read_bytes() == (second / "c.bin").read_bytes()
    # the damaged snapshot restores what is intact and names what is not
    partial = cli("restore", f"latest:{first}", "--path", str(first), "--target", str(tmp_path / "r1"))
    assert partial.code == 13, partial
    assert "a.bin" in partial.stderr and "damaged" in partial.stderr
    assert not (tmp_path / "r1" / "a.bin").exists()
    assert (tmp_path / "r1" / "b.txt").read_text() == (first / "b.txt").read_text()


def test_a_deleted_pack_is_named_by_check(cli: Cli, two_snapshots: tuple[Path, Path, Path]) -> None:
    repo, first, _ = two_snapshots
    gone = pack_holding(repo, first / "a.bin")
    gone.unlink()
    result = cli("check")
    assert result.code == 13, result
    assert f"pack {gone.name[:8]}: is missing" in result.stdout
    assert f"{first}/a.bin needs blob" in result.stdout


def test_a_deleted_index_file_is_found_and_repair_index_rebuilds_it(
    cli: Cli, two_snapshots: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    repo, first, second = two_snapshots
    index_files = sorted((repo / "index").iterdir())
    assert len(index_files) == 2
    index_files[0].unlink()
    broken = cli("check")
    assert broken.code == 13, broken
    assert "not in the index" in broken.stdout
    assert "is not in the index (left by an interrupted backup, or the index is damaged" in broken.stderr

    repaired = cli("repair", "index")
    assert repaired.code == 0, repaired
    assert "indexed" in repaired.stdout
    _assert_checked_and_restored(cli, tmp_path, first, second)


def _assert_checked_and_restored(cli: Cli, tmp_path: Path, *sources: Path) -> None:
    """``check --read-data`` passes and each source's latest snapshot restores byte for byte."""
    healthy = cli("check", "--read-data")
    assert healthy.code == 0, healthy
    for source in sources:
        target = tmp_path / f"restored-{source.name}"
        assert cli("restore", f"latest:{source}", "--path", str(source), "--target", str(target)).code == 0
        for original in source.iterdir():
            assert (target / original.name).read_bytes() == original.read_bytes()


def test_repair_index_succeeds_where_the_storage_refuses_to_delete_the_old_index_files(
    cli: Cli, two_snapshots: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """An old index file the storage will not delete (an object lock; here the immutable
    attribute, which root cannot override either) is superseded by the rebuilt index: the repair
    is done, says which it could not remove, and every reader ignores them (was exit 14)."""
    repo, first, second = two_snapshots
    old = sorted((repo / "index").iterdir())
    try:
        for path in old:
            subprocess.run(["chattr", "+i", str(path)], check=True)
        repaired = cli("--json", "repair", "index")
        assert repaired.code == 0, repaired
        report = json.loads(repaired.stdout)
        assert report["index_files_removed"] == 0
        assert sorted(report["index_files_not_removed"]) == [f"index/{p.name}" for p in old]
        said = cli("repair", "index")  # the first repair's file is deleted, the locked ones named again
        assert said.code == 0, said
        assert "removed 1" in said.stdout
        assert f"could not remove yet (the storage refuses, e.g. object lock; superseded): index/{old[0].name}" in (
            said.stdout
        )
        _assert_checked_and_restored(cli, tmp_path, first, second)
    finally:
        for path in old:
            subprocess.run(["chattr", "-i", str(path)], check=False)


def test_a_garbage_index_file_is_an_integrity_error_not_a_crash(
    cli: Cli, two_snapshots: tuple[Path, Path, Path]
) -> None:
    repo, _, _ = two_snapshots
    victim = sorted((repo / "index").iterdir())[0]
    victim.write_bytes(b"this is not an index file")
    result = cli("snapshots")  # does not need the index
    assert result.code == 0
    listing = cli("ls", "latest")
    assert listing.code == 13, listing
    assert "Traceback" not in listing.stderr
    assert listing.stderr.startswith("lifeboat: error: index/")
    assert cli("check").code == 13
    assert cli("repair", "index").code == 0
    assert cli("check").code == 0


def _undecodable_snapshot(repo: Path, how: str) -> str:
    """Store a snapshot object that cannot be decoded; returns its id."""
    import blake3

    if how == "garbage":  # bytes that are no snapshot at all, under a name they do not hash to
        data, name = b"not a snapshot" * 10, "ab" * 32
    else:  # a real snapshot's ciphertext with one byte flipped, named by its new hash: only the AEAD tells
        original = bytearray(next((repo / "snapshots").iterdir()).read_bytes())
        original[len(original) // 2] ^= 0x01
        data = bytes(original)
        name = blake3.blake3(data).hexdigest()
    (repo / "snapshots" / name).write_bytes(data)
    return name


@pytest.mark.parametrize("how", ["garbage", "flipped"])
def test_an_undecodable_snapshot_is_reported_and_hides_none_of_the_others(
    cli: Cli, two_snapshots: tuple[Path, Path, Path], how: str
) -> None:
    import json

    repo, _, second = two_snapshots
    good = [s["id"] for s in json.loads(cli("--json", "snapshots").stdout)]
    bad = _undecodable_snapshot(repo, how)

    listed = cli("snapshots")
    assert listed.code == 13, listed
    assert all(i[:8] in listed.stdout for i in good), listed
    assert "2 snapshots" in listed.stdout
    assert f"error: snapshot {bad[:8]} cannot be read: " in listed.stdout
    assert (
        listed.stderr.splitlines()[0]
        == "lifeboat: error: 1 snapshot could not be read (listed above); the others are listed"
    )
    assert f"'lifeboat forget {bad[:8]}'" in listed.stderr.splitlines()[1]
    as_json = cli("--json", "snapshots")
    assert as_json.code == 13, as_json
    document = json.loads(as_json.stdout)
    assert [s["id"] for s in document if "time" in s] == good
    (damaged,) = [s for s in document if "unreadable" in s]
    assert damaged["id"] == bad and damaged["unreadable"]
    filtered = json.loads(cli("--json", "snapshots", "--path", str(second)).stdout)
    assert len(filtered) == 2 and filtered[-1]["id"] == bad  # a filter cannot tell it does not match

    stats = cli("stats")
    assert stats.code == 13, stats
    assert "snapshots:            2" in stats.stdout
    assert f"error: snapshot {bad[:8]} cannot be read" in stats.stdout
    stats_json = cli("--json", "stats")
    assert stats_json.code == 13
    counted = json.loads(stats_json.stdout)
    assert counted["snapshots"] == 2
    assert [p.startswith(f"snapshot {bad[:8]} cannot be read: ") for p in counted["problems"]] == [True]

    for dry_run in ([], ["--dry-run"]):
        refused = cli("forget", "--keep-last", "1", *dry_run)
        assert refused.code == 13, refused
        message, hint = refused.stderr.splitlines()
        assert message.startswith(f"lifeboat: error: snapshot {bad[:8]} cannot be read: "), refused
        assert "nothing was removed" in message and f"'lifeboat forget {bad[:8]}'" in hint
    assert len(json.loads(cli("--json", "snapshots").stdout)) == 3  # nothing was removed

    removed = cli("--json", "forget", bad[:8])  # named by id: removed although it cannot be read
    assert removed.code == 0, removed
    assert json.loads(removed.stdout)["removed"] == [bad]
    assert cli("snapshots").code == 0
    assert cli("check").code == 0
    assert cli("forget", "--keep-last", "1").code == 0  # one snapshot per source: both kept
    assert [s["id"] for s in json.loads(cli("--json", "snapshots").stdout)] == good


# --- what the storage will not give is not damage ----------------------------------------------------


def _refuse_to_nobody(path: Path) -> None:
    shutil.chown(path, "root")
    os.chmod(path, 0o600)


def test_check_reports_packs_the_user_cannot_read_as_storage_14_and_damage_wins_with_13(as_nobody: Nobody) -> None:
    import json

    first, second = as_nobody.work / "first", as_nobody.work / "second"
    for folder, name, size in ((first, "a.bin", 3 * MiB), (second, "c.bin", 2 * MiB)):
        folder.mkdir()
        (folder / name).write_bytes(os.urandom(size))
        assert as_nobody.run("backup", str(folder)).code == 0
    packs = sorted((as_nobody.repo / "data").glob("*/*"))
    for pack in packs:
        _refuse_to_nobody(pack)

    structure = as_nobody.run("check")  # the trees cannot be read: nothing is known to be damaged
    assert structure.code == 14, structure
    assert "which is in a pack the storage would not give" in structure.stdout and "damaged" not in structure.stdout
    message, hint = structure.stderr.splitlines()[-2:]  # after the progress lines
    assert message.startswith("lifeboat: error: 2 objects could not be read, so the repository was not fully checked")
    assert "may read every file of the repository" in hint
    full = as_nobody.run("--json", "check", "--read-data")
    assert full.code == 14, full
    report = json.loads(full.stdout)
    assert {p["cause"] for p in report["errors"]} == {"storage"}
    unreadable = {p["object"] for p in report["errors"] if p["kind"] == "data"}
    assert unreadable == {f"pack {p.name[:8]}" for p in packs}
    assert all("permission denied" in p["message"].lower() for p in report["errors"])

    for pack in packs:
        shutil.chown(pack, "nobody")
    assert as_nobody.run("check", "--read-data").code == 0
    damaged, refused = pack_holding(as_nobody.repo, second / "c.bin"), pack_holding(as_nobody.repo, first / "a.bin")
    data = bytearray(damaged.read_bytes())
    data[len(data) // 3] ^= 0x40
    damaged.write_bytes(bytes(data))
    _refuse_to_nobody(refused)

    both = as_nobody.run("check", "--read-data")
    assert both.code == 13, both  # damage decides the exit code
    assert f"error: pack {damaged.name[:8]}: blob" in both.stdout and "is damaged" in both.stdout
    assert f"error: pack {refused.name[:8]}: cannot be read: " in both.stdout
    message = both.stderr.splitlines()[-2]
    assert message.startswith("lifeboat: error: the repository has ") and "objects could not be read" in message
    causes = {
        p["object"]: p["cause"] for p in json.loads(as_nobody.run("--json", "check", "--read-data").stdout)["errors"]
    }
    assert causes[f"pack {damaged.name[:8]}"] == "damage" and causes[f"pack {refused.name[:8]}"] == "storage"


def test_a_damaged_snapshot_does_not_stop_the_next_backup_it_is_named_and_passed_over(
    cli: Cli, two_snapshots: tuple[Path, Path, Path]
) -> None:
    import json

    repo, _, second = two_snapshots
    before = json.loads(cli("--json", "snapshots").stdout)
    bad = _undecodable_snapshot(repo, "flipped")

    backed_up = cli("backup", str(second))
    assert backed_up.code == 0, backed_up  # the new snapshot is whole: the damage is elsewhere
    assert f"snapshot {bad[:8]}: cannot be read (" in backed_up.stderr, backed_up
    assert "not considered as this backup's parent" in backed_up.stderr
    readable = [s for s in json.loads(cli("--json", "snapshots").stdout) if "time" in s]
    assert len(readable) == len(before) + 1
    restored = cli("restore", readable[-1]["id"], "--target", str(repo.parent / "back"))
    assert restored.code == 0, restored
    assert sorted(p.name for p in (repo.parent / "back" / second.relative_to("/")).iterdir()) == sorted(
        p.name for p in second.iterdir()
    )
