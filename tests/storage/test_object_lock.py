"""Immutability on S3 Object Lock (moto enforces it): everything but lock files is written
locked, forget and prune say what the storage would not let them remove yet, the
repository stays sound, and prune keeps locked what recent snapshots need."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.operations.backup import BackupRequest, backup_files
from lifeboat.repository import layout
from lifeboat.repository.immutability import extend_object_locks
from lifeboat.repository.repo import Repository
from lifeboat.storage.registry import open_backend
from tests.conftest import FAST_KDF, PASSPHRASE, run_cli
from tests.replication.test_copy import contents, make_tree
from tests.servers.fixtures import Server, new_bucket, s3_client
from tests.storage.remote import s3_url, use_env

FAST_INIT = ("init", "--kdf-memory", "8MiB", "--kdf-iterations", "1")


@pytest.fixture
def locked_bucket(moto_server: Server, monkeypatch: pytest.MonkeyPatch) -> str:
    use_env(monkeypatch, moto_server)
    return new_bucket(moto_server, object_lock=True)


def lock_of(server: Server, bucket: str, key: str) -> tuple[str | None, datetime | None]:
    head = s3_client(server).head_object(Bucket=bucket, Key=key)
    return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")


def test_forget_and_prune_report_what_the_lock_keeps(
    moto_server: Server, locked_bucket: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    url = s3_url(moto_server, locked_bucket, object_lock="compliance", object_lock_period="1d")
    env = {**cli_env, **moto_server.env, "LIFEBOAT_REPO": url}
    assert run_cli(*FAST_INIT, env=env).code == 0
    tree = tmp_path / "data"
    make_tree(tree, seed=21)
    assert run_cli("backup", str(tree), env=env).code == 0
    (tree / "new-file").write_bytes(b"changed" * 1000)
    assert run_cli("backup", str(tree), env=env).code == 0

    objects = s3_client(moto_server).list_objects_v2(Bucket=locked_bucket, Prefix="repo/")["Contents"]
    names = [o["Key"][len("repo/") :] for o in objects]
    assert {n.split("/")[0] for n in names} >= {"config", "keys", "data", "index", "snapshots"}
    for name in names:
        mode, until = lock_of(moto_server, locked_bucket, f"repo/{name}")
        assert mode == "COMPLIANCE", name
        assert until is not None and until > datetime.now(UTC) + timedelta(hours=23)

    forgotten = run_cli("forget", "--keep-last", "1", env=env)
    assert forgotten.code == 0, forgotten
    assert "could not remove yet (the storage refuses, e.g. object lock): snapshot" in forgotten.stdout
    listed = json.loads(run_cli("--json", "snapshots", env=env).stdout)
    assert len(listed) == 2
    by_id = json.loads(run_cli("--json", "forget", listed[0]["id"][:8], env=env).stdout)
    assert by_id["not_removed"] == [listed[0]["id"]]
    assert by_id["removed"] == []

    pruned = run_cli("prune", env=env)
    assert pruned.code == 0, pruned
    assert "object lock:" in pruned.stdout and "stay locked until at least" in pruned.stdout
    assert "bundled 2 snapshots in one object" in pruned.stdout

    # After another backup the next prune writes a new bundle; the storage keeps the old one
    # locked: said, not an error, and the snapshots are listed whole from the two.
    listing = s3_client(moto_server).list_objects_v2(Bucket=locked_bucket, Prefix="repo/bundles/")["Contents"]
    (first,) = [o["Key"].rsplit("/", 1)[-1] for o in listing]
    assert run_cli("backup", str(tree), env=env).code == 0
    again = run_cli("--json", "prune", env=env)
    assert again.code == 0, again
    bundle = json.loads(again.stdout)["bundle"]
    assert bundle["written"] and bundle["snapshots"] == 3 and bundle["removed"] == 0
    assert bundle["not_removed"] == [f"bundle {first[:8]}"]
    listed = json.loads(run_cli("--json", "snapshots", env=env).stdout)
    assert len(listed) == 3


def test_prune_under_lock_leaves_a_sound_repository(
    moto_server: Server, locked_bucket: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    url = s3_url(
        moto_server, locked_bucket, object_lock="compliance", object_lock_period="1d", lock_exempt="locks/,snapshots/"
    )
    env = {**cli_env, **moto_server.env, "LIFEBOAT_REPO": url}
    assert run_cli(*FAST_INIT, env=env).code == 0
    tree = tmp_path / "data"
    make_tree(tree, seed=22)
    (tree / "going-away.bin").write_bytes(b"\x01" * 3_000_000)
    assert run_cli("backup", str(tree), env=env).code == 0
    (tree / "going-away.bin").unlink()
    assert run_cli("backup", str(tree), env=env).code == 0

    forgotten = run_cli("--json", "forget", "--keep-last", "1", env=env)
    assert forgotten.code == 0, forgotten
    assert len(json.loads(forgotten.stdout)["removed"]) == 1

    pruned = run_cli("--json", "prune", env=env)
    assert pruned.code == 0, pruned
    report = json.loads(pruned.stdout)
    assert report["packs_deleted"] == 0
    assert any(name.startswith("pack ") for name in report["not_removed"])
    assert any(name.startswith("index/") for name in report["not_removed"])

    checked = run_cli("check", "--read-data", env=env)
    assert checked.code == 0, checked
    target = tmp_path / "restored"
    assert run_cli("restore", "latest", "--target", str(target), env=env).code == 0
    assert contents(target / tree.relative_to("/")) == contents(tree)


def test_prune_extends_the_locks_recent_snapshots_rely_on(
    moto_server: Server, locked_bucket: str, tmp_path: Path
) -> None:
    backend = open_backend(
        s3_url(moto_server, locked_bucket, object_lock="compliance", object_lock_period="2d"), env=os.environ
    )
    repo = Repository.init(backend, PASSPHRASE, kdf=FAST_KDF)
    tree = tmp_path / "data"
    make_tree(tree, seed=23)
    now = datetime.now(UTC)
    first = backup_files(repo, BackupRequest(paths=(str(tree),), workers=2)).snapshot
    later = now + timedelta(days=3)  # a backup three days on reuses every pack of the first
    second = backup_files(repo, BackupRequest(paths=(str(tree),), workers=2), clock=lambda: later).snapshot
    assert second.summary["packs_written"] <= 1

    extension = extend_object_locks(repo, now=later)
    assert extension is not None
    assert extension.snapshots == 1
    assert extension.extended >= 3
    pack = next(iter(repo.backend.list(layout.DATA))).name
    for name in (pack, layout.HEADER, next(iter(repo.backend.list(layout.KEYS))).name):
        _mode, until = lock_of(moto_server, locked_bucket, f"repo/{name}")
        assert until is not None and until >= later + timedelta(days=2), name
    _mode, first_until = lock_of(moto_server, locked_bucket, f"repo/{layout.snapshot_name(first.id)}")
    assert first_until is not None and first_until < now + timedelta(days=2, hours=1)  # not the old snapshot's

    again = extend_object_locks(repo, now=later)
    assert again is not None and again.extended == 0  # the slack avoids rewriting locks every run


def test_storage_without_object_lock_extends_nothing(tmp_path: Path) -> None:
    repo = Repository.init(open_backend(str(tmp_path / "repo"), env={}), PASSPHRASE, kdf=FAST_KDF)
    assert extend_object_locks(repo, now=datetime.now(UTC)) is None
