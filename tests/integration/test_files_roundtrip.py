"""Directory trees backed up and restored byte-identical, with their metadata."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeboat.core.progress import Notice, Severity
from lifeboat.operations.backup import BackupRequest, backup_files
from lifeboat.operations.restore import restore_snapshot
from lifeboat.repository.repo import Repository
from lifeboat.sources.files import restorer
from lifeboat.sources.files.restorer import RestoreOptions
from tests.integration.trees import allocated_bytes, describe, make_mixed_tree


def backup(repo: Repository, *paths: Path, **kwargs: object) -> tuple[str, list[Notice]]:
    result = backup_files(repo, BackupRequest(paths=tuple(str(p) for p in paths), **kwargs))  # type: ignore[arg-type]
    return result.snapshot.id, result.notices


def test_mixed_tree_restores_with_content_modes_times_links_and_holes(local_repo: Repository, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    make_mixed_tree(source)
    os.utime(source / "docs", ns=(1_600_000_000_000_000_000, 1_650_000_000_000_000_000))
    describe(source)  # settle atimes (relatime) before the backup records them
    before = describe(source)
    snapshot_id, notices = backup(local_repo, source)
    assert notices == []
    target = tmp_path / "restored"
    done = restore_snapshot(local_repo, f"{snapshot_id}:{source}", RestoreOptions(target=str(target)))
    assert done.result.errors == 0
    assert describe(target) == before
    # the sparse file comes back sparse, not 64 MiB of zeros on disk
    assert allocated_bytes(target / "sparse.img") < 1024 * 1024
    # hard links come back as one inode
    assert os.stat(target / "docs/secret.txt").st_ino == os.stat(target / "media/hardlink-to-secret").st_ino


def test_restore_of_the_whole_snapshot_keeps_absolute_paths_below_the_target(
    local_repo: Repository, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    source.mkdir()
    (source / "f.txt").write_text("hello")
    snapshot_id, _ = backup(local_repo, source)
    target = tmp_path / "out"
    restore_snapshot(local_repo, snapshot_id, RestoreOptions(target=str(target)))
    assert (target / str(source).lstrip("/") / "f.txt").read_text() == "hello"


def test_sockets_are_skipped_with_a_warning(local_repo: Repository, tmp_path: Path) -> None:
    import socket

    source = tmp_path / "s"
    source.mkdir()
    (source / "keep.txt").write_text("x")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(source / "app.sock"))
    try:
        snapshot_id, notices = backup(local_repo, source)
    finally:
        sock.close()
    assert [(n.severity, Path(n.path).name, n.message) for n in notices] == [
        (Severity.WARNING, "app.sock", "socket skipped")
    ]
    target = tmp_path / "out"
    restore_snapshot(local_repo, f"{snapshot_id}:{source}", RestoreOptions(target=str(target)))
    assert sorted(os.listdir(target)) == ["keep.txt"]


names = st.text(alphabet="abcdefgh-_.é ", min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))
contents = st.binary(max_size=5000) | st.builds(os.urandom, st.integers(0, 600_000))


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> dict[str, object]:
    entries: dict[str, object] = {}
    for name in draw(st.lists(names, max_size=6, unique=True)):
        if depth < 3 and draw(st.booleans()):
            entries[name] = draw(trees(depth + 1))
        else:
            entries[name] = (draw(contents), draw(st.sampled_from([0o644, 0o600, 0o755, 0o444])))
    return entries


def materialise(root: Path, spec: dict[str, object]) -> None:
    root.mkdir(exist_ok=True)
    for name, value in spec.items():
        if isinstance(value, dict):
            materialise(root / name, value)
        else:
            data, mode = value  # type: ignore[misc]
            (root / name).write_bytes(data)
            (root / name).chmod(mode)


@settings(max_examples=12)
@given(spec=trees())
def test_random_trees_round_trip(tmp_path_factory: object, spec: dict[str, object]) -> None:
    from lifeboat.storage.memory import MemoryBackend
    from tests.conftest import FAST_KDF, PASSPHRASE

    base = tmp_path_factory.mktemp("rt")  # type: ignore[attr-defined]
    repo = Repository.init(MemoryBackend(), PASSPHRASE, kdf=FAST_KDF)
    source = base / "src"
    materialise(source, spec)
    describe(source)  # settle atimes (relatime) before the backup records them
    before = describe(source)
    snapshot_id, notices = backup(repo, source)
    assert notices == []
    target = base / "out"
    restore_snapshot(repo, f"{snapshot_id}:{source}", RestoreOptions(target=str(target)))
    assert describe(target) == before


def test_unchanged_directories_keep_their_tree_and_changed_ones_get_a_new_one(
    local_repo: Repository, tmp_path: Path
) -> None:
    from lifeboat.core.treewalk import find
    from lifeboat.operations.backup import BackupRequest, backup_files

    source = tmp_path / "src"
    for folder in ("same", "chmod", "edit"):
        (source / folder / "deeper").mkdir(parents=True)
        (source / folder / "deeper" / "file.txt").write_text(f"{folder}\n")
        (source / folder / "top.txt").write_text("top\n")
    describe(source)  # settle atimes
    first = backup_files(local_repo, BackupRequest(paths=(str(source),))).snapshot
    (source / "chmod" / "deeper" / "file.txt").chmod(0o600)
    (source / "edit" / "top.txt").write_text("edited\n")
    second = backup_files(local_repo, BackupRequest(paths=(str(source),))).snapshot

    def subtree(snapshot_tree: bytes, rel: str) -> bytes | None:
        node = find(local_repo, snapshot_tree, f"{str(source).lstrip('/')}/{rel}")
        assert node is not None
        return node.subtree

    assert subtree(first.tree, "same") == subtree(second.tree, "same")
    assert subtree(first.tree, "edit/deeper") == subtree(second.tree, "edit/deeper")
    assert subtree(first.tree, "chmod/deeper") != subtree(second.tree, "chmod/deeper")
    assert subtree(first.tree, "chmod") != subtree(second.tree, "chmod")
    assert subtree(first.tree, "edit") != subtree(second.tree, "edit")
    before = describe(source)
    target = tmp_path / "out"
    restore_snapshot(local_repo, f"{second.id}:{source}", RestoreOptions(target=str(target)))
    assert describe(target) == before


def test_a_large_file_is_restored_by_several_reads_at_once_and_a_damaged_blob_removes_it(
    local_repo: Repository, tmp_path: Path
) -> None:
    import random

    from lifeboat.core.treewalk import find
    from lifeboat.operations.backup import BackupRequest, backup_files
    from lifeboat.repository import layout

    source = tmp_path / "big"
    source.mkdir()
    payload = random.Random(5).randbytes(48 * 1024 * 1024 + 12345)  # two packs: two reads at once
    (source / "large.bin").write_bytes(payload)
    (source / "small.txt").write_text("small\n")
    snapshot = backup_files(local_repo, BackupRequest(paths=(str(source),))).snapshot
    target = tmp_path / "restored"
    done = restore_snapshot(local_repo, f"{snapshot.id}:{source}", RestoreOptions(target=str(target), workers=3))
    assert done.result.errors == 0
    assert (target / "large.bin").read_bytes() == payload

    # Damage one blob of the third read: the file is not restored, the other file is.
    node = find(local_repo, snapshot.tree, f"{str(source).lstrip('/')}/large.bin")
    assert node is not None and len(node.content) > 8
    victim = local_repo.locate(node.content[len(node.content) * 3 // 4])
    pack = local_repo.backend.get(layout.pack_name(victim.pack_id.hex()))
    damaged = bytearray(pack)
    damaged[victim.offset + 10] ^= 0xFF
    local_repo.backend.put(layout.pack_name(victim.pack_id.hex()), bytes(damaged))
    again = tmp_path / "again"
    result = restore_snapshot(local_repo, f"{snapshot.id}:{source}", RestoreOptions(target=str(again), workers=3))
    assert result.result.damaged == ["large.bin"]
    assert not (again / "large.bin").exists()
    assert (again / "small.txt").read_text() == "small\n"


def test_a_restore_frees_each_file_it_finished_without_the_garbage_collector(
    local_repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file's records (its entry, its places) go when the file is done, by reference
    counting: a cycle between the files of a batch and their directory's handle kept them
    until the collector's rare full passes — in the end every file of a large restore in
    memory at once (88 MiB RSS for the bench tree's restore against 71)."""
    source = tmp_path / "src"
    for d in range(4):
        (source / f"d{d}").mkdir(parents=True)
        for f in range(50):
            (source / f"d{d}" / f"f{f}").write_bytes(os.urandom(100 + f))
    snapshot_id, _ = backup(local_repo, source)
    monkeypatch.setattr(restorer, "BATCH_FILES", 16)  # many batches, several a directory
    gc.collect()
    gc.disable()
    try:
        done = restore_snapshot(local_repo, f"{snapshot_id}:{source}", RestoreOptions(target=str(tmp_path / "out")))
        left = sum(1 for o in gc.get_objects() if isinstance(o, restorer._File))
    finally:
        gc.enable()
    assert done.result.files == 200 and done.result.errors == 0
    assert (tmp_path / "out" / "d3" / "f49").read_bytes() == (source / "d3" / "f49").read_bytes()
    assert left == 0
