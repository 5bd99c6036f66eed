"""Walk options: --one-file-system, include and exclude patterns, files that change while read."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lifeboat.core.treewalk import walk
from lifeboat.errors import cli_flag, spell_options
from lifeboat.operations.backup import BackupRequest, backup_files
from lifeboat.repository.repo import Repository


def paths_in(repo: Repository, snapshot_id: str, root: Path) -> list[str]:
    snapshot = repo.load_snapshot(snapshot_id)
    prefix = str(root).lstrip("/") + "/"
    return sorted(p[len(prefix) :] for p, _ in walk(repo, snapshot.tree) if p.startswith(prefix))


@pytest.fixture
def mounted(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "mnt").mkdir(parents=True)
    (root / "local.txt").write_text("on the root file system")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "lifeboat-test", str(root / "mnt")], check=True)
    (root / "mnt" / "elsewhere.txt").write_text("on another file system")
    yield root
    subprocess.run(["umount", str(root / "mnt")], check=True)


def test_one_file_system_keeps_the_mount_point_but_not_its_contents(local_repo: Repository, mounted: Path) -> None:
    crossing = backup_files(local_repo, BackupRequest(paths=(str(mounted),)))
    staying = backup_files(local_repo, BackupRequest(paths=(str(mounted),), one_file_system=True))
    assert paths_in(local_repo, crossing.snapshot.id, mounted) == ["local.txt", "mnt", "mnt/elsewhere.txt"]
    assert paths_in(local_repo, staying.snapshot.id, mounted) == ["local.txt", "mnt"]
    # The notice names the option the way each front end spells it.
    assert [spell_options(n.message, cli_flag) for n in staying.notices] == [
        "on another file system; contents skipped (--one-file-system)"
    ]
    assert [n.to_json()["message"] for n in staying.notices] == [
        "on another file system; contents skipped (one_file_system)"
    ]


def test_include_and_exclude_patterns_select_what_is_backed_up(local_repo: Repository, tmp_path: Path) -> None:
    root = tmp_path / "app"
    for rel in ("conf/app.conf", "conf/old.conf.bak", "logs/today.log", "src/main.py", "src/cache/x.pyc"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    excluded = backup_files(local_repo, BackupRequest(paths=(str(root),), excludes=("*.log", "cache", "*.bak")))
    assert paths_in(local_repo, excluded.snapshot.id, root) == ["conf", "conf/app.conf", "logs", "src", "src/main.py"]
    included = backup_files(local_repo, BackupRequest(paths=(str(root),), includes=("*.conf",)))
    assert paths_in(local_repo, included.snapshot.id, root) == ["conf", "conf/app.conf"]


def test_a_file_growing_while_read_is_reported_not_fatal(local_repo: Repository, tmp_path: Path) -> None:
    root = tmp_path / "live"
    root.mkdir()
    growing = root / "growing.log"
    growing.write_bytes(os.urandom(64 * 1024 * 1024))
    stop = threading.Event()

    def append() -> None:
        with open(growing, "ab") as f:
            while not stop.is_set():
                f.write(os.urandom(65536))
                f.flush()
                time.sleep(0.001)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        result = backup_files(local_repo, BackupRequest(paths=(str(root),)))
    finally:
        stop.set()
        writer.join()
    notices = result.notices
    assert result.archive.errors == 0
    assert [n.message for n in notices] == ["changed while being read; the snapshot holds what was read"]
