"""Damaged repositories: check names the damage, unaffected data still restores, repair works."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Cli

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
    healthy = cli("check", "--read-data")
    assert healthy.code == 0, healthy
    for source in (first, second):
        target = tmp_path / f"restored-{source.name}"
        assert cli("restore", f"latest:{source}", "--path", str(source), "--target", str(target)).code == 0
        for original in source.iterdir():
            assert (target / original.name).read_bytes() == original.read_bytes()


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
