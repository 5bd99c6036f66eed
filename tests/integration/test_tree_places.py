"""Directories backed up at a place of the snapshot tree of one's choosing (the shape of a
PostgreSQL backup: ``data/`` and ``tablespaces/<oid>/``), with entries added at the end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lifeboat.core.tree import Node, NodeType
from lifeboat.core.treewalk import walk
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession
from lifeboat.sources.files.archiver import ArchiveResult, FileArchiver, FileBackupOptions, TreePlace
from lifeboat.sources.files.restorer import FileRestorer, RestoreOptions

MADE = Node(name="spaces", type=NodeType.DIR, mode=0o750, uid=7, gid=8, mtime_ns=123, ctime_ns=456)


def _cluster(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "disk" / "srv" / "main"
    (data / "base" / "1").mkdir(parents=True)
    (data / "base" / "1" / "1259").write_bytes(os.urandom(40_000))
    (data / "PG_VERSION").write_text("15\n")
    space = tmp_path / "elsewhere" / "ts"
    (space / "PG_15").mkdir(parents=True)
    (space / "PG_15" / "16390").write_bytes(os.urandom(10_000))
    return data, space


def _backup(repo: Repository, options: FileBackupOptions, parent: bytes | None = None) -> ArchiveResult:
    with WriteSession(repo, workers=2) as session:
        archiver = FileArchiver(
            session, repo.chunker(), options, parent_loader=repo if parent else None, parent_tree=parent
        )
        result = archiver.run()
        session.commit()
    return result


def _places(data: Path, space: Path) -> FileBackupOptions:
    def label(directory: Node) -> list[Node]:
        assert directory.name == "data" and directory.subtree is None
        return [Node(name="backup_label", type=NodeType.FILE, mode=0o600, uid=directory.uid, gid=directory.gid)]

    return FileBackupOptions(
        places=(TreePlace(str(data), ("data",), late_entries=label), TreePlace(str(space), ("spaces", "16384"))),
        made_dirs={("spaces",): MADE},
    )


def test_placed_directories_are_stored_at_their_places_with_the_late_entries(
    local_repo: Repository, tmp_path: Path
) -> None:
    data, space = _cluster(tmp_path)
    archive = _backup(local_repo, _places(data, space))
    listing = {path: node for path, node in walk(local_repo, archive.tree)}
    assert sorted(listing) == [
        "data",
        "data/PG_VERSION",
        "data/backup_label",
        "data/base",
        "data/base/1",
        "data/base/1/1259",
        "spaces",
        "spaces/16384",
        "spaces/16384/PG_15",
        "spaces/16384/PG_15/16390",
    ]
    made = listing["spaces"]
    assert (made.mode, made.uid, made.gid, made.mtime_ns, made.ctime_ns) == (0o750, 7, 8, 123, 456)
    st = os.stat(data)
    assert (listing["data"].mode, listing["data"].mtime_ns) == (st.st_mode & 0o7777, st.st_mtime_ns)
    assert archive.absent == []
    target = tmp_path / "restored"
    FileRestorer(local_repo, RestoreOptions(target=str(target))).restore(local_repo.load_tree(archive.tree))
    assert (target / "data" / "base" / "1" / "1259").read_bytes() == (data / "base" / "1" / "1259").read_bytes()
    assert (target / "spaces" / "16384" / "PG_15" / "16390").read_bytes() == (space / "PG_15" / "16390").read_bytes()


def test_late_entries_are_made_once_every_file_is_read(local_repo: Repository, tmp_path: Path) -> None:
    data, space = _cluster(tmp_path)
    for i in range(200):  # in both places, so a reader is still busy when the walk ends
        (data / "base" / "1" / f"{20000 + i}").write_bytes(os.urandom(20_000))
        (space / "PG_15" / f"{30000 + i}").write_bytes(os.urandom(20_000))
    seen: list[int] = []
    archiver_box: list[FileArchiver] = []

    def label(directory: Node) -> list[Node]:
        seen.append(archiver_box[0].result.files_new)  # files are counted once read and stored
        return []

    options = FileBackupOptions(
        places=(TreePlace(str(data), ("data",), late_entries=label), TreePlace(str(space), ("spaces", "16384"))),
        made_dirs={("spaces",): MADE},
        readers=1,
    )
    with WriteSession(local_repo, workers=2) as session:
        archiver = FileArchiver(session, local_repo.chunker(), options)
        archiver_box.append(archiver)
        result = archiver.run()
        session.commit()
    assert seen == [result.files_new] and result.files_new == 403


def test_an_unchanged_file_at_its_place_is_taken_from_the_parent_unread(local_repo: Repository, tmp_path: Path) -> None:
    data, space = _cluster(tmp_path)
    first = _backup(local_repo, _places(data, space))
    second = _backup(local_repo, _places(data, space), parent=first.tree)
    assert (second.files_new, second.files_changed, second.files_unmodified) == (0, 0, 3)


def test_a_place_that_vanished_is_named_as_absent(local_repo: Repository, tmp_path: Path) -> None:
    data, space = _cluster(tmp_path)
    (space / "PG_15" / "16390").unlink()
    (space / "PG_15").rmdir()
    space.rmdir()
    archive = _backup(local_repo, _places(data, space))
    assert archive.absent == [str(space)]
    assert sorted(p for p, _ in walk(local_repo, archive.tree) if "/" not in p) == ["data", "spaces"]


def test_places_inside_places_are_refused(local_repo: Repository, tmp_path: Path) -> None:
    data, space = _cluster(tmp_path)
    options = FileBackupOptions(places=(TreePlace(str(data), ("data",)), TreePlace(str(space), ("data", "ts"))))
    with pytest.raises(ValueError, match="data is a place"):
        _backup(local_repo, options)
