"""Backups on unreliable storage: with 10 % of requests failing (5xx, lost responses,
timeouts) and slow answers a backup completes, reads back verified and restores
byte-identical; with storage that stays down the backup fails with exit code 14 and
leaves nothing half-committed."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.errors import ExitCode, StorageError
from lifeboat.operations.backup import BackupRequest, backup_files
from lifeboat.operations.maintenance import check
from lifeboat.operations.restore import RestoreOptions, restore_snapshot
from lifeboat.repository.check import DataSubset
from lifeboat.repository.header import RepositoryHeader
from lifeboat.repository.repo import Repository
from lifeboat.storage.base import Backend
from lifeboat.storage.faulty import FaultPlan, FaultyBackend
from lifeboat.storage.retry import RetryingBackend, RetryPolicy
from tests.conftest import FAST_KDF, PASSPHRASE, run_cli
from tests.servers.fault_proxy import FAIL, PASS, FaultProxy
from tests.servers.fixtures import Server, new_bucket
from tests.storage.remote import fresh_url, provider, use_env

SMALL_PACKS = RepositoryHeader("0" * 32, "2026-01-01T00:00:00+00:00", pack_size=1 << 20)


def make_tree(root: Path, *, seed: int, files: int = 40) -> None:
    rng = random.Random(seed)
    for i in range(files):
        folder = root / rng.choice(["a", "a/b", "c", "."])
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.choice([0, 10, 5_000, 200_000, 700_000])
        (folder / f"f{i}.bin").write_bytes(rng.randbytes(size))
    (root / "big.bin").write_bytes(rng.randbytes(3 * 1024 * 1024))


def contents(root: Path) -> dict[str, str]:
    """Every regular file below ``root`` and the SHA-256 of its bytes."""
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(params=["moto", "sshd"])
def remote(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    server: Server = request.getfixturevalue(f"{request.param}_server")
    backend = provider(fresh_url(request.param, server, monkeypatch))
    yield backend
    backend.close()


def test_backup_under_injected_faults_completes_verifies_and_restores(remote: Backend, tmp_path: Path) -> None:
    plan = FaultPlan(rate=0.15, slow=(0.0, 0.02), timeout_delay=0.05, seed=7)
    faulty = FaultyBackend(remote, plan)
    backend = RetryingBackend(faulty, RetryPolicy(attempts=10, base_delay=0.01, max_delay=0.2))
    repo = Repository.init(backend, PASSPHRASE, kdf=FAST_KDF, header=SMALL_PACKS)
    source = tmp_path / "source"
    make_tree(source, seed=3)

    result = backup_files(repo, BackupRequest(paths=(str(source),), workers=2))
    assert result.stored.packs >= 5

    reopened = Repository.open(backend, PASSPHRASE)
    verdict = check(reopened, read_data=DataSubset())
    assert verdict.ok, verdict.errors
    assert verdict.packs_read == verdict.packs >= 5
    target = tmp_path / "restored"
    restore_snapshot(reopened, result.snapshot.id, RestoreOptions(target=str(target)))
    assert contents(target / source.relative_to("/")) == contents(source)
    assert sum(plan.injected.values()) >= 10
    assert set(plan.injected) == {"error", "reset", "timeout"}


def test_storage_that_stays_down_fails_the_backup_and_commits_nothing(remote: Backend, tmp_path: Path) -> None:
    faulty = FaultyBackend(remote, FaultPlan(seed=1))
    backend = RetryingBackend(faulty, RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    repo = Repository.init(backend, PASSPHRASE, kdf=FAST_KDF, header=SMALL_PACKS)
    first_tree, second_tree = tmp_path / "one", tmp_path / "two"
    make_tree(first_tree, seed=1, files=5)
    make_tree(second_tree, seed=2)
    first = backup_files(repo, BackupRequest(paths=(str(first_tree),), workers=2)).snapshot

    puts = 0
    original_put = faulty.put

    def put_then_go_down(name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        nonlocal puts
        original_put(name, data, if_absent=if_absent)
        if name.startswith("data/"):
            puts += 1
            if puts == 2:
                faulty.down()  # from now on every request fails

    faulty.put = put_then_go_down  # type: ignore[method-assign]
    with pytest.raises(StorageError) as failed:
        backup_files(repo, BackupRequest(paths=(str(second_tree),), workers=2))
    assert failed.value.exit_code == ExitCode.STORAGE
    assert "unreachable" in str(failed.value)

    faulty.up()
    reopened = Repository.open(backend, PASSPHRASE)
    assert [s.id for s in reopened.snapshots()] == [first.id]
    verdict = check(reopened, read_data=DataSubset())
    assert verdict.ok, verdict.errors


def test_cli_backup_to_storage_that_goes_down_exits_14_and_the_repository_stays_sound(
    moto_server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    use_env(monkeypatch, moto_server)
    bucket = new_bucket(moto_server)
    proxy = FaultProxy(moto_server.port).start()
    try:
        env = {
            **cli_env,
            "LIFEBOAT_REPO": f"s3://{bucket}/repo?endpoint={proxy.endpoint}&retries=2&retry_max_delay=0.2",
        }
        assert run_cli("init", "--kdf-memory", "8MiB", "--kdf-iterations", "1", env=env).code == 0
        source = tmp_path / "source"
        make_tree(source, seed=5, files=3)
        (source / "large.bin").write_bytes(random.Random(9).randbytes(40 * 1024 * 1024))
        first_tree = tmp_path / "first"
        make_tree(first_tree, seed=6, files=3)
        assert run_cli("backup", str(first_tree), env=env).code == 0

        data_puts: list[str] = []

        def down_after_first_pack(method: str, path: str) -> str:
            if data_puts:
                return FAIL
            if method in ("PUT", "POST") and "/repo/data/" in path:
                data_puts.append(path)
            return PASS

        proxy.rule = down_after_first_pack
        failed = run_cli("backup", str(source), env=env)
        assert failed.code == ExitCode.STORAGE, failed
        assert failed.stderr.startswith("lifeboat: error: ")
        assert "Traceback" not in failed.stderr
        assert "put data/" in failed.stderr and "HTTP 500 InternalError (tried 3 times)" in failed.stderr
        assert moto_server.env["AWS_SECRET_ACCESS_KEY"] not in failed.stderr

        proxy.rule = lambda _method, _path: PASS
        listed = run_cli("--json", "snapshots", env=env)
        assert listed.code == 0, listed
        assert len(__import__("json").loads(listed.stdout)) == 1
        checked = run_cli("check", "--read-data", env=env)
        assert checked.code == 0, checked
        assert "no errors were found" in checked.stdout
    finally:
        proxy.stop()
