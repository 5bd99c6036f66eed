"""A restore that cannot read its data fails: the right exit code, every file named, no empty
or truncated file left behind, and no hang however many files fail.

Each repository holds an *old* part (backed up first, its data in its own pack) and a *new*
part whose data packs are then made unreadable: for real (``chmod 000`` with the restore run
as an unprivileged user), through the fault-injecting storage wrapper (an I/O error, a
refusal, an exception no provider should raise), or by an S3 server that answers 500 or 403.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat.core.ids import BlobType
from lifeboat.core.snapshot import Snapshot
from lifeboat.errors import ExitCode
from lifeboat.operations.backup import BackupRequest, backup_files
from lifeboat.operations.restore import RestoreOptions, restore_snapshot
from lifeboat.repository import layout
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession
from lifeboat.sources.files.restorer import RestoreResult
from lifeboat.sources.tools.pgcluster import chown_tree, server_lifeboat_command
from lifeboat.storage.base import Backend
from lifeboat.storage.faulty import FaultPlan, FaultyBackend
from lifeboat.storage.local import LocalBackend
from lifeboat.storage.registry import open_backend
from tests.conftest import FAST_KDF, PASSPHRASE, CliResult, run_cli
from tests.integration.deadline import within
from tests.servers.fault_proxy import DENY, FAIL, PASS, FaultProxy
from tests.servers.fixtures import Server, new_bucket
from tests.storage.remote import s3_url, use_env

USER = "nobody"
OLD_FILES = 3


@dataclass
class Sample:
    """A repository whose latest snapshot holds ``old/`` and ``new/`` in separate packs."""

    base: Path
    repo_url: str
    password_file: Path
    source: Path
    new_packs: list[str]  # object names of the packs holding new/'s data

    @property
    def env(self) -> dict[str, str]:
        return {"LIFEBOAT_REPO": self.repo_url, "LIFEBOAT_PASSWORD_FILE": str(self.password_file)}

    def target(self, name: str = "target") -> Path:
        return self.base / "restores" / name


def write_files(folder: Path, count: int, seed: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"file-{i:03}.bin").write_bytes(os.urandom(3000 + seed * 100 + i))


def data_packs(repo: Repository, snapshot: Snapshot, folder: str) -> list[str]:
    """The packs holding the data of the files below ``folder`` in ``snapshot``."""
    from lifeboat.core.treewalk import find, walk

    node = find(repo, snapshot.tree, folder)
    assert node is not None and node.subtree is not None
    packs = {repo.locate(blob).pack_id.hex() for _path, entry in walk(repo, node.subtree) for blob in entry.content}
    return sorted(layout.pack_name(p) for p in packs)


def make_sample(backend: Backend, base: Path, new_files: int, repo_url: str) -> Sample:
    repo = Repository.init(backend, PASSPHRASE, kdf=FAST_KDF)
    source = base / "source"
    write_files(source / "old", OLD_FILES, seed=1)
    os.chmod(base, 0o755)
    for folder in (source, source / "old"):
        os.chmod(folder, 0o755)
    backup_files(repo, BackupRequest(paths=(str(source / "old"),)))
    write_files(source / "new", new_files, seed=2)
    os.chmod(source / "new", 0o755)
    latest = backup_files(repo, BackupRequest(paths=(str(source),))).snapshot
    new_packs = data_packs(repo, latest, str(source / "new"))
    old_packs = data_packs(repo, latest, str(source / "old"))
    assert not set(new_packs) & set(old_packs)
    password_file = base / "passphrase"
    password_file.write_bytes(PASSPHRASE + b"\n")
    password_file.chmod(0o600)
    (base / "restores").mkdir()
    return Sample(base, repo_url, password_file, source, new_packs)


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's own are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="lifeboat-restore-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def local_sample(base: Path, new_files: int) -> Sample:
    return make_sample(LocalBackend(base / "repo"), base, new_files, str(base / "repo"))


def as_user(user: str, sample: Sample, *args: str, timeout: float = 120) -> CliResult:
    """Run ``lifeboat`` as ``user`` (the tests run as root, whom no permission stops)."""
    command = server_lifeboat_command(user, mirror=sample.base / "mirror") or f"{sys.executable} -m lifeboat"
    done = subprocess.run(
        [
            "runuser",
            "-u",
            user,
            "--",
            "env",
            *(f"{k}={v}" for k, v in sample.env.items()),
            *shlex.split(command),
            *args,
        ],
        capture_output=True,
        timeout=timeout,  # a hang fails the test instead of stalling the suite
        check=False,
        cwd=sample.base,
    )
    return CliResult(
        done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"), done.stdout
    )


def regular_files(root: Path) -> dict[str, bytes]:
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


def assert_only_old_files_restored(sample: Sample, target: Path) -> None:
    """The old files are whole; nothing of new/ is left, neither empty nor truncated."""
    restored = regular_files(target)
    expected = {
        str((sample.source / "old" / name).relative_to("/")): (sample.source / "old" / name).read_bytes()
        for name in os.listdir(sample.source / "old")
    }
    assert restored == expected


# --- a pack the restoring user cannot read ----------------------------------------------------
@pytest.mark.parametrize("new_files", [1, 40])
def test_a_pack_the_user_cannot_read_fails_the_restore_with_14_and_names_every_file(base: Path, new_files: int) -> None:
    sample = local_sample(base, new_files)
    chown_tree(base / "repo", USER)
    chown_tree(sample.password_file, USER)
    chown_tree(base / "restores", USER)
    for pack in sample.new_packs:
        os.chmod(base / "repo" / pack, 0o000)

    result = as_user(USER, sample, "restore", "latest", "--target", str(sample.target()))

    assert result.code == ExitCode.STORAGE, result
    unreadable = [line for line in result.stderr.splitlines() if "cannot read from the repository" in line]
    assert len(unreadable) == new_files, result
    for i in range(new_files):
        assert any(f"new/file-{i:03}.bin: cannot read" in line for line in unreadable), (i, result)
    assert "permission denied" in unreadable[0]
    assert f"lifeboat: error: {new_files} files were not restored because the storage could not be read" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert_only_old_files_restored(sample, sample.target())


# --- the fault-injecting wrapper -------------------------------------------------------------------
def restore_through_faults(sample: Sample, base: Path, plan: FaultPlan, target: Path) -> RestoreResult:
    """Restore the latest snapshot through ``plan``'s faults, failing (not hanging) after 60 s."""
    repo = Repository.open(FaultyBackend(LocalBackend(base / "repo"), plan), PASSPHRASE)
    return within(60, lambda: restore_snapshot(repo, "latest", RestoreOptions(target=str(target), workers=2))).result


@pytest.mark.parametrize("new_files", [1, 40])
@pytest.mark.parametrize(
    ("kind", "code", "listed"),
    [
        ("io", ExitCode.STORAGE, "unreadable"),
        ("denied", ExitCode.STORAGE, "unreadable"),
        ("crash", ExitCode.ERROR, ""),  # an exception no provider should raise: an internal error
        ("cancelled", ExitCode.ERROR, ""),  # and a BaseException
    ],
)
def test_a_failing_read_of_a_pack_fails_the_restore_and_leaves_no_file_of_it(
    base: Path, new_files: int, kind: str, code: ExitCode, listed: str
) -> None:
    sample = local_sample(base, new_files)
    plan = FaultPlan(rate=1.0, kinds=(kind,), operations=("get_range",), objects=tuple(sample.new_packs))
    result = restore_through_faults(sample, base, plan, sample.target())
    failure = result.failure()
    assert failure is not None and failure.exit_code == code, failure
    assert result.errors == new_files
    if listed:
        assert sorted(result.unreadable) == sorted(
            str((sample.source / "new" / f"file-{i:03}.bin").relative_to("/")) for i in range(new_files)
        )
    assert result.files == OLD_FILES
    assert_only_old_files_restored(sample, sample.target())


def test_damaged_and_unreadable_files_together_exit_13_and_count_both(base: Path) -> None:
    sample = local_sample(base, 10)
    repo = Repository.open(LocalBackend(base / "repo"), PASSPHRASE)
    latest = repo.snapshots()[-1]
    (damaged,) = data_packs(repo, latest, str(sample.source / "old"))
    data = bytearray((base / "repo" / damaged).read_bytes())
    data[len(data) // 2] ^= 0x01
    (base / "repo" / damaged).write_bytes(bytes(data))
    plan = FaultPlan(rate=1.0, kinds=("io",), operations=("get_range",), objects=tuple(sample.new_packs))
    result = restore_through_faults(sample, base, plan, sample.target())
    failure = result.failure()
    assert failure is not None and failure.exit_code == ExitCode.INTEGRITY
    assert "10 files were not restored because the storage could not be read" in failure.message
    assert f"{len(result.damaged)} files were not restored because their data is damaged" in failure.message
    assert result.damaged and result.files + len(result.damaged) == OLD_FILES
    restored = regular_files(sample.target())
    assert len(restored) == result.files  # whole, or not there at all
    for rel, data in restored.items():
        assert Path("/", rel).read_bytes() == data


def test_a_crafted_uid_beyond_32_bits_is_refused_not_restored_as_an_empty_file(
    base: Path, cli_env: dict[str, str]
) -> None:
    repo = Repository.init(LocalBackend(base / "repo"), PASSPHRASE, kdf=FAST_KDF)
    data = b"owned by nobody that can exist\n"
    node = {"name": "f", "type": "file", "mode": 0o644, "uid": 2**32, "gid": 0, "mtime_ns": 0, "ctime_ns": 0}
    with repo.lock(exclusive=False, operation="test"), WriteSession(repo) as session:
        file_id = repo.blob_id(data)
        session.save_blob(BlobType.DATA, data, file_id)
        node |= {"content": [file_id.hex()], "size": len(data)}
        raw = json.dumps({"version": 1, "nodes": [node]}).encode()
        tree_id = repo.blob_id(raw)
        session.save_blob(BlobType.TREE, raw, tree_id)
        session.commit()
    from datetime import UTC, datetime

    repo.save_snapshot(Snapshot(time=datetime.now(UTC), source="crafted", kind="files", tree=tree_id, hostname="x"))
    target = base / "target"
    result = run_cli("restore", "latest", "--target", str(target), env={**cli_env, "LIFEBOAT_REPO": str(base / "repo")})
    assert result.code == ExitCode.INTEGRITY, result
    assert "uid out of range" in result.stderr
    assert regular_files(target) == {} if target.exists() else True


# --- S3 answering 500 or 403 -----------------------------------------------------------------------
@pytest.mark.parametrize("new_files", [1, 40])
@pytest.mark.parametrize("action", [FAIL, DENY])
def test_s3_refusing_the_pack_after_retries_fails_the_restore_with_14(
    moto_server: Server, monkeypatch: pytest.MonkeyPatch, base: Path, action: str, new_files: int
) -> None:
    use_env(monkeypatch, moto_server)
    bucket = new_bucket(moto_server)
    proxy = FaultProxy(moto_server.port).start()
    try:
        url = s3_url(moto_server, bucket).replace(moto_server.endpoint, proxy.endpoint)
        url += "&retries=2&retry_max_delay=0.2"
        sample = make_sample(open_backend(url, env=os.environ), base, new_files, url)
        failing = [name.rsplit("/", 1)[1] for name in sample.new_packs]
        proxy.rule = lambda method, path: action if method == "GET" and any(p in path for p in failing) else PASS
        result = run_cli(
            "restore", "latest", "--target", str(sample.target()), env={**sample.env, **moto_server.env}, timeout=120
        )
        assert result.code == ExitCode.STORAGE, result
        assert result.stderr.count("cannot read from the repository") == new_files
        assert ("HTTP 500 InternalError (tried 3 times)" if action == FAIL else "access denied") in result.stderr
        assert f"{new_files} files were not restored because the storage could not be read" in result.stderr
        assert_only_old_files_restored(sample, sample.target())
    finally:
        proxy.stop()
