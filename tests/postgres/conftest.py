"""Real PostgreSQL clusters for the tests: initdb as an unprivileged user, archive_command
set to Lifeboat, free ports, a local repository the server can write to.

A missing PostgreSQL installation fails these tests; it never skips them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive
from lifeboat.sources.postgres.pgdata import read_system_id
from lifeboat.sources.tools.pg import find_program
from lifeboat.sources.tools.pgcluster import (
    ScratchCluster,
    chown_tree,
    default_os_user,
    free_port,
    server_lifeboat_command,
)
from lifeboat.storage.local import LocalBackend
from tests.conftest import FAST_KDF, PASSPHRASE, CliResult, run_cli

OS_USER = default_os_user()


@pytest.fixture(scope="session")
def server_lifeboat() -> Iterator[str]:
    """How a server process runs this Lifeboat (see LIFEBOAT_SERVER_COMMAND)."""
    import sys

    find_program("initdb")  # fails (never skips) without PostgreSQL
    find_program("pg_ctl")
    runtime = Path(tempfile.mkdtemp(prefix="lifeboat-test-runtime-", dir="/var/tmp"))
    os.chmod(runtime, 0o755)
    command = server_lifeboat_command(OS_USER, mirror=runtime / "copy")
    yield command or f"{sys.executable} -m lifeboat"
    shutil.rmtree(runtime, ignore_errors=True)


@dataclass
class PgWorld:
    """A cluster archiving into a repository, and the environment to run Lifeboat with."""

    base: Path
    repo_dir: Path
    password_file: Path
    server_command: str
    cluster: ScratchCluster
    others: list[ScratchCluster] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            "LIFEBOAT_REPO": str(self.repo_dir),
            "LIFEBOAT_PASSWORD_FILE": str(self.password_file),
            "LIFEBOAT_SERVER_COMMAND": self.server_command,
            "LIFEBOAT_PASSWORD": "",
            "LIFEBOAT_CONFIG": "",
            "LIFEBOAT_STATE_DIR": str(self.repo_dir.parent / "state"),  # the record cache: never the host's
        }

    def archive_command(self, *extra: str) -> str:
        env = f"LIFEBOAT_REPO={self.repo_dir} LIFEBOAT_PASSWORD_FILE={self.password_file}"
        return " ".join([env, self.server_command, "wal-push", *extra, "%p"])

    def lifeboat(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> CliResult:
        return run_cli(*args, env={**self.env, **(env or {})}, timeout=timeout)

    def conn_args(self, cluster: ScratchCluster | None = None) -> list[str]:
        c = cluster or self.cluster
        return ["--host", str(c.socket_dir), "--port", str(c.port), "--user", "postgres"]

    def backup(self, *args: str) -> CliResult:
        result = self.lifeboat("--json", "backup", "postgres", *self.conn_args(), "--archive-wait", "60s", *args)
        assert result.code == 0, result
        return result

    def repository(self) -> Repository:
        return Repository.open(LocalBackend(self.repo_dir), PASSPHRASE)

    def archive(self) -> WalArchive:
        return WalArchive(self.repository(), read_system_id(self.cluster.data_dir))

    def switch_wal(self, cluster: ScratchCluster | None = None) -> str:
        c = cluster or self.cluster
        return c.psql("SELECT pg_walfile_name(pg_switch_wal())")

    def wait_archived(self, name: str, timeout: float = 60) -> None:
        archive = self.archive()
        deadline = time.monotonic() + timeout
        while not archive.exists(name):
            assert time.monotonic() < deadline, f"{name} was not archived within {timeout}s"
            time.sleep(0.1)

    def restored(self, data_dir: Path, port: int) -> ScratchCluster:
        """A handle on a restored cluster (its socket directory is the one in its configuration)."""
        handle = ScratchCluster(self.base / f"restored-{port}", port=port, data_dir=data_dir)
        handle.socket_dir = self.cluster.socket_dir
        self.others.append(handle)
        return handle

    def new_dir(self, name: str) -> Path:
        """An absent directory below the world whose parent the server user may enter."""
        path = self.base / "dirs" / name
        path.parent.mkdir(exist_ok=True)
        os.chmod(path.parent, 0o755)
        return path

    def restore(
        self,
        target: Path,
        *args: str,
        port: int | None = None,
        start: bool = True,
        env: dict[str, str] | None = None,
    ) -> tuple[CliResult, ScratchCluster]:
        port = port or free_port()
        argv = ["--json", "restore", "postgres", "--target-dir", str(target), "--port", str(port), *args]
        if start:
            argv.append("--start")
        result = self.lifeboat(*argv, env=env, timeout=600)
        return result, self.restored(target, port)

    def close(self) -> None:
        for cluster in [*self.others, self.cluster]:
            try:
                if cluster.data_dir.exists() and cluster.running():
                    cluster.stop("immediate", check=False)
            except Exception:  # best effort teardown
                pass
        shutil.rmtree(self.base, ignore_errors=True)


def make_world(
    server_command: str,
    *,
    checksums: bool = True,
    settings: dict[str, str] | None = None,
    archive_extra: tuple[str, ...] = (),
    start: bool = True,
    wal_segment_mb: int | None = None,
) -> PgWorld:
    base = Path(tempfile.mkdtemp(prefix="lifeboat-pg-", dir="/tmp"))
    os.chmod(base, 0o755)
    repo_dir = base / "repo"
    Repository.init(LocalBackend(repo_dir), PASSPHRASE, kdf=FAST_KDF)
    chown_tree(repo_dir, OS_USER)
    password_file = base / "passphrase"
    password_file.write_bytes(PASSPHRASE + b"\n")
    password_file.chmod(0o600)
    chown_tree(password_file, OS_USER)
    cluster = ScratchCluster(base / "pg")
    world = PgWorld(base, repo_dir, password_file, server_command, cluster)
    cluster.init(
        checksums=checksums,
        settings={
            "archive_mode": "on",
            "archive_command": world.archive_command(*archive_extra),
            "archive_timeout": "0",
            **(settings or {}),
        },
        wal_segment_mb=wal_segment_mb,
    )
    if start:
        cluster.start()
    return world


WorldFactory = Callable[..., PgWorld]


@pytest.fixture(scope="module")
def worlds(server_lifeboat: str) -> Iterator[WorldFactory]:
    """Make clusters for one test module; all are stopped and removed after it."""
    made: list[PgWorld] = []

    def make(**kwargs: object) -> PgWorld:
        world = make_world(server_lifeboat, **kwargs)  # type: ignore[arg-type]
        made.append(world)
        return world

    yield make
    for world in made:
        world.close()


def wait_until(
    check: Callable[[], bool], timeout: float = 30, what: str = "condition", *, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(interval)
