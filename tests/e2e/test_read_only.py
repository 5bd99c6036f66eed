"""The commands that promise not to change the repository keep the promise: ``snapshots``,
``key list`` and ``pg info`` always, ``ls``, ``dump``, ``diff``, ``stats``, ``check`` and
``restore`` under ``--no-lock`` open it read-only (any write would be refused) and work on
storage this process may not write at all."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.errors import StorageReadOnly
from lifeboat.operations.backup import BackupRequest, backup_files
from lifeboat.repository.repo import Repository
from lifeboat.storage.base import Backend
from lifeboat.storage.local import LocalBackend
from tests.conftest import FAST_KDF, PASSPHRASE


def stored_state(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every file (mode, bytes) and directory (mode, with its modification time standing in
    for its entries) below ``root``: a lock taken and released changes its directory's time."""
    state: dict[str, tuple[int, bytes | None]] = {}
    for path in sorted([root, *root.rglob("*")]):
        info = path.lstat()
        key = str(path.relative_to(root))
        if path.is_dir():
            state[key] = (info.st_mode, str(info.st_mtime_ns).encode())
        else:
            state[key] = (info.st_mode, path.read_bytes())
    return state


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[tuple[Path, Path, list[str]]]:
    """A local repository with two snapshots of a small tree: (repository, tree, snapshot ids)."""
    root, tree = tmp_path / "repo", tmp_path / "data"
    (tree / "sub").mkdir(parents=True)
    (tree / "hello.txt").write_text("hello\n")
    (tree / "sub" / "big.bin").write_bytes(os.urandom(300_000))
    repo = Repository.init(LocalBackend(root), PASSPHRASE, kdf=FAST_KDF)
    first = backup_files(repo, BackupRequest(paths=(str(tree),), workers=2)).snapshot.id
    (tree / "hello.txt").write_text("hello again\n")
    second = backup_files(repo, BackupRequest(paths=(str(tree),), workers=2)).snapshot.id
    yield root, tree, [first, second]


def read_only_commands(tree: Path, ids: list[str], target: Path) -> dict[str, list[str]]:
    return {
        "snapshots": ["snapshots"],
        "key list": ["key", "list"],
        "pg info": ["pg", "info"],
        "ls": ["ls", "--no-lock", "latest"],
        "dump": ["dump", "--no-lock", "latest", str(tree / "hello.txt")],
        "diff": ["diff", "--no-lock", ids[0][:8], ids[1][:8]],
        "stats": ["stats", "--no-lock"],
        "check": ["check", "--no-lock", "--read-data"],
        "restore": ["restore", "--no-lock", "latest", "--target", str(target)],
    }


def test_read_only_commands_open_the_repository_read_only(
    repository: tuple[Path, Path, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Run in this process, so that every backend a command opens can be tried with a write."""
    from lifeboat.app.cli.main import route, run
    from lifeboat.storage import registry

    root, tree, ids = repository
    (tmp_path / "pass").write_bytes(PASSPHRASE + b"\n")
    monkeypatch.setenv("LIFEBOAT_REPO", str(root))
    monkeypatch.setenv("LIFEBOAT_PASSWORD_FILE", str(tmp_path / "pass"))
    for name in ("LIFEBOAT_CONFIG", "LIFEBOAT_PASSWORD", "LIFEBOAT_PASSWORD_COMMAND"):
        monkeypatch.delenv(name, raising=False)
    opened: list[Backend] = []
    real_open = registry.open_backend

    def open_and_remember(url: str, **kwargs: object) -> Backend:
        backend = real_open(url, **kwargs)  # type: ignore[arg-type]
        opened.append(backend)
        return backend

    monkeypatch.setattr(registry, "open_backend", open_and_remember)
    before = stored_state(root)
    for what, argv in read_only_commands(tree, ids, tmp_path / "restored").items():
        opened.clear()
        code = run(route(argv))
        assert code == 0, (what, capfd.readouterr().err)
        assert opened, what
        for backend in opened:
            with pytest.raises(StorageReadOnly):
                backend.put("keys/" + "0" * 32, b"a write")
        assert stored_state(root) == before, what


def test_read_only_commands_work_on_storage_that_cannot_be_written(
    repository: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    root, tree, ids = repository
    (tmp_path / "pass").write_bytes(PASSPHRASE + b"\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LIFEBOAT_")},
        "LIFEBOAT_REPO": str(root),
        "LIFEBOAT_PASSWORD_FILE": str(tmp_path / "pass"),
    }
    for path in [root, *root.rglob("*")]:
        path.chmod(stat.S_IMODE(path.lstat().st_mode) & ~0o222)
    # Root writes anywhere; without these capabilities it is bound by the modes like any user.
    unprivileged = ["setpriv", "--inh-caps=-dac_override,-fowner", "--bounding-set=-dac_override,-fowner"]
    prefix = unprivileged if os.geteuid() == 0 else []

    def lifeboat(*argv: str) -> subprocess.CompletedProcess[bytes]:
        command = [*prefix, sys.executable, "-m", "lifeboat", *argv]
        return subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)

    before = stored_state(root)
    try:
        for argv in (["ls", "latest"], ["check"], ["stats"]):
            locked = lifeboat(*argv)
            assert locked.returncode == 14, locked  # taking a lock needs a write: the storage really refuses one
            message, hint = locked.stderr.decode().splitlines()
            assert message.startswith("lifeboat: error: cannot take a lock to read: "), locked
            assert hint.endswith("or, only to read, go without the lock: --no-lock (unsafe while prune runs)"), hint
        for what, argv in read_only_commands(tree, ids, tmp_path / "restored").items():
            done = lifeboat(*argv)
            assert done.returncode == 0, (what, done.stderr.decode())
        assert stored_state(root) == before
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(stat.S_IMODE(path.lstat().st_mode) | 0o200)
