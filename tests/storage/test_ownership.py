"""Root writing into a repository another OS user owns keeps that owner and the repository's
modes (local directories, and the modes on SFTP). These tests run as root."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifeboat.core.ids import BlobType
from lifeboat.core.snapshot import Snapshot
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession
from lifeboat.repository.wal import WalArchive
from lifeboat.storage import ownership
from lifeboat.storage.local import LocalBackend
from tests.conftest import FAST_KDF, PASSPHRASE
from tests.servers.fixtures import Server, new_sftp_dir, sftp_url
from tests.storage.remote import provider

OWNER = "postgres"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ownership is kept only when running as root")


def entries(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            yield path, os.lstat(path)


@pytest.fixture
def owned_dir(tmp_path: Path) -> Path:
    """An empty repository directory belonging to the database's OS user."""
    os.chmod(tmp_path, 0o755)
    repo = tmp_path / "repo"
    repo.mkdir(mode=0o700)
    entry = pwd.getpwnam(OWNER)
    os.chown(repo, entry.pw_uid, entry.pw_gid)
    return repo


def write_everything(repo: Repository) -> None:
    """Key files, a lock, packs, index files, a snapshot and a WAL object, as root."""
    repo.add_key(b"a second passphrase", kdf=FAST_KDF)
    with repo.lock(exclusive=False, operation="backup"), WriteSession(repo) as session:
        session.save_blob(BlobType.DATA, os.urandom(5000))
        session.commit()
        repo.save_snapshot(
            Snapshot(time=datetime.now(UTC), source="t", kind="files", tree=b"\0" * 32, hostname="h", paths=("/x",))
        )
        lock_files = list((repo.backend.root / "locks").iterdir())  # type: ignore[attr-defined]
        assert lock_files and all(p.stat().st_uid == pwd.getpwnam(OWNER).pw_uid for p in lock_files)
    WalArchive(repo, "7000000000000000001").push("000000010000000000000001", b"x" * 1024)


def test_what_root_creates_in_a_postgres_owned_repository_belongs_to_postgres(owned_dir: Path) -> None:
    repo = Repository.init(LocalBackend(owned_dir), PASSPHRASE, kdf=FAST_KDF)
    write_everything(repo)
    entry = pwd.getpwnam(OWNER)
    found = list(entries(owned_dir))
    kinds = {p.relative_to(owned_dir).parts[0] for p, _ in found}
    assert {"config", "keys", "locks", "data", "index", "snapshots", "wal"} <= kinds
    foreign = [str(p) for p, st in found if (st.st_uid, st.st_gid) != (entry.pw_uid, entry.pw_gid)]
    assert foreign == []
    modes = {(stat.S_ISDIR(st.st_mode), stat.S_IMODE(st.st_mode)) for _, st in found}
    assert modes == {(True, 0o700), (False, 0o600)}
    assert not [p for p, _ in found if p.name.startswith(".tmp-")]


def test_a_group_shared_repository_keeps_its_group_and_modes_whatever_the_umask(owned_dir: Path) -> None:
    group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid)
    os.chown(owned_dir, pwd.getpwnam(OWNER).pw_uid, group.gr_gid)
    os.chmod(owned_dir, 0o2750)
    Repository.init(LocalBackend(owned_dir), PASSPHRASE, kdf=FAST_KDF)
    os.chmod(owned_dir / "config", 0o640)  # the administrator opens the repository to the group
    old_umask = os.umask(0o077)
    try:
        repo = Repository.open(LocalBackend(owned_dir), PASSPHRASE)
        write_everything(repo)
    finally:
        os.umask(old_umask)
    found = [(p, st) for p, st in entries(owned_dir) if p.name != "config" and p.parent.name != "keys"]
    assert {st.st_gid for _, st in found} == {group.gr_gid}
    modes = {(stat.S_ISDIR(st.st_mode), stat.S_IMODE(st.st_mode)) for _, st in found}
    assert modes == {(True, 0o2750), (False, 0o640)}


def test_the_owner_is_learned_from_the_root_directory(owned_dir: Path) -> None:
    from lifeboat.storage.ownership import TreeOwner

    learned = TreeOwner.learn(owned_dir)
    assert (learned.uid, learned.adopt, learned.file_mode, learned.dir_mode) == (
        pwd.getpwnam(OWNER).pw_uid,
        True,
        0o600,
        0o700,
    )


def test_an_sftp_repository_gets_the_modes_of_its_config_and_root(sshd_server: Server) -> None:
    path = Path(new_sftp_dir(sshd_server))
    backend = provider(sftp_url(sshd_server, str(path)))
    try:
        backend.put("config", b"header", if_absent=True)
        backend.put("keys/k1", b"key")
        private = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.rglob("*")}
        os.chmod(path / "config", 0o640)  # opened to the group, as on a local repository
        os.chmod(path, 0o750)
    finally:
        backend.close()
    backend = provider(sftp_url(sshd_server, str(path)))
    try:
        backend.put("data/ab/" + "1" * 64, b"pack")
    finally:
        backend.close()
    assert private["config"] == 0o600 and private["k1"] == 0o600
    assert stat.S_IMODE((path / "data" / "ab" / ("1" * 64)).stat().st_mode) == 0o640
    assert stat.S_IMODE((path / "data").stat().st_mode) == 0o750
    assert stat.S_IMODE((path / "data" / "ab").stat().st_mode) == 0o750


def test_root_that_may_not_change_owners_refuses_instead_of_leaving_a_root_file(owned_dir: Path) -> None:
    Repository.init(LocalBackend(owned_dir), PASSPHRASE, kdf=FAST_KDF)
    before = sorted(str(p) for p, _ in entries(owned_dir))
    secrets = owned_dir.parent
    (secrets / "pass").write_bytes(PASSPHRASE + b"\n")
    (secrets / "new-pass").write_bytes(b"another passphrase\n")
    env = {
        **os.environ,
        "LIFEBOAT_REPO": str(owned_dir),
        "LIFEBOAT_PASSWORD_FILE": str(secrets / "pass"),
        "LIFEBOAT_NEW_PASSWORD_FILE": str(secrets / "new-pass"),
    }
    without_chown = ["setpriv", "--inh-caps=-chown", "--bounding-set=-chown"]  # root as in a hardened container
    done = subprocess.run(
        [*without_chown, sys.executable, "-m", "lifeboat", "key", "add"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 14, done
    assert f"cannot give it to the repository's owner {OWNER}:{OWNER} (Operation not permitted)" in done.stderr
    assert f"run lifeboat as {OWNER}" in done.stderr
    assert sorted(str(p) for p, _ in entries(owned_dir)) == before  # no key, no temporary file left


def test_threads_making_the_same_directories_at_once_lose_no_object(tmp_path: Path) -> None:
    """As root, a directory is made under a temporary name and renamed into place; a plain rename
    can replace another thread's directory while it is still empty, under a file being created in
    it (ENOENT: 'no such object'). Eight threads stage and publish into new directories at once,
    sixty times over; every object must land (with a plain rename, a few of 480 failed in most
    runs)."""
    entry = pwd.getpwnam(OWNER)
    failures: list[BaseException] = []
    for round_ in range(60):
        root = tmp_path / f"repo-{round_}"
        root.mkdir()
        os.chown(root, entry.pw_uid, entry.pw_gid)
        backend = LocalBackend(root)
        start = threading.Barrier(8)
        names = [f"data/{i % 2}0/{round_:02d}{i:062d}" for i in range(8)]

        def store(name: str, backend: LocalBackend = backend, start: threading.Barrier = start) -> None:
            try:
                start.wait(timeout=30)
                staged = backend.stage("data/")
                staged.write(name.encode())
                staged.publish(name)
            except BaseException as exc:  # collected for the assertion
                failures.append(exc)

        threads = [threading.Thread(target=store, args=(name,)) for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a store hung"
        assert failures == [], failures
        assert all(backend.get(name) == name.encode() for name in names)


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "check-then-rename"])
def test_a_directory_is_never_renamed_over_one_another_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renameat2: bool
) -> None:
    """The rename that puts a new directory in place refuses an existing target, even an empty
    directory (which a plain rename replaces), with the kernel's no-replace rename and without it."""
    if not renameat2:
        monkeypatch.setattr(ownership, "_renameat2", None)
    assert ownership._renameat2 is not None or not renameat2  # this machine's glibc has it
    theirs, mine = tmp_path / "data", tmp_path / ".tmp-data"
    theirs.mkdir()
    mine.mkdir()
    (mine / "marker").write_text("mine")
    with pytest.raises(FileExistsError):
        ownership.rename_without_replacing(mine, theirs)
    assert list(theirs.iterdir()) == [] and (mine / "marker").exists()
    (theirs / "file").write_text("x")  # a file target: refused too
    with pytest.raises(FileExistsError):
        ownership.rename_without_replacing(mine, theirs / "file")
    ownership.rename_without_replacing(mine, tmp_path / "new")
    assert (tmp_path / "new" / "marker").read_text() == "mine" and not mine.exists()
