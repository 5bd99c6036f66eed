"""``lifeboat copy`` as an operator runs it: URLs or configured names, passphrases from the
environment (never argv), a secondary repository that follows the primary, JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lifeboat.errors import ExitCode
from lifeboat.repository.repo import Repository
from lifeboat.storage.local import LocalBackend
from tests.conftest import PASSPHRASE, run_cli
from tests.replication.test_copy import OTHER_PASSPHRASE, contents, make_tree
from tests.servers.fixtures import Server, new_bucket

FAST_INIT = ("init", "--kdf-memory", "8MiB", "--kdf-iterations", "1")


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "main").write_bytes(PASSPHRASE + b"\n")
    (folder / "offsite").write_bytes(OTHER_PASSPHRASE + b"\n")
    return folder


@pytest.fixture
def s3_env(moto_server: Server) -> dict[str, str]:
    return dict(moto_server.env)


def test_copy_between_a_local_and_an_s3_repository(
    tmp_path: Path, secrets_dir: Path, s3_env: dict[str, str], moto_server: Server
) -> None:
    main = str(tmp_path / "main-repo")
    offsite = f"s3://{new_bucket(moto_server)}/lifeboat?endpoint={moto_server.endpoint}"
    as_main = {**s3_env, "LIFEBOAT_REPO": main, "LIFEBOAT_PASSWORD_FILE": str(secrets_dir / "main")}
    as_offsite = {**s3_env, "LIFEBOAT_REPO": offsite, "LIFEBOAT_PASSWORD_FILE": str(secrets_dir / "offsite")}
    assert run_cli(*FAST_INIT, env=as_main).code == 0
    assert run_cli(*FAST_INIT, env=as_offsite).code == 0
    tree = tmp_path / "data"
    make_tree(tree, seed=11)
    assert run_cli("backup", str(tree), env=as_main).code == 0

    copy_env = {**as_offsite, "LIFEBOAT_FROM_PASSWORD_FILE": str(secrets_dir / "main")}
    done = run_cli("copy", "--from", main, "--all", env=copy_env)
    assert done.code == 0, done
    assert "copied 1 snapshots from" in done.stdout
    assert "trees rewritten for the destination's keys" in done.stdout
    assert "verified" in done.stdout
    assert OTHER_PASSPHRASE.decode() not in done.stdout + done.stderr

    target = tmp_path / "restored"
    restored = run_cli("restore", "latest", "--target", str(target), env=as_offsite)
    assert restored.code == 0, restored
    assert contents(target / tree.relative_to("/")) == contents(tree)

    again = run_cli("--json", "copy", "--from", main, "--all", env=copy_env)
    assert again.code == 0, again
    document = json.loads(again.stdout)
    assert document["copied"] == []
    assert len(document["already_present"]) == 1
    assert document["blobs_sent"] == 0
    assert document["to"].startswith("s3://")


def test_a_secondary_repository_that_follows_the_primary(
    tmp_path: Path, secrets_dir: Path, s3_env: dict[str, str], moto_server: Server
) -> None:
    bucket = new_bucket(moto_server)
    config = tmp_path / "lifeboat.yaml"
    config.write_text(
        f"""
version: 1
default_repository: main
repositories:
  main:
    url: {tmp_path / "main-repo"}
    password_file: {secrets_dir / "main"}
  offsite:
    url: s3://{bucket}/lifeboat
    password_file: {secrets_dir / "offsite"}
    follows: main
    options:
      endpoint: {moto_server.endpoint}
      connections: 6
"""
    )
    env = {**s3_env, "LIFEBOAT_CONFIG": str(config)}
    assert run_cli(*FAST_INIT, env=env).code == 0
    assert run_cli("-r", "offsite", *FAST_INIT, env=env).code == 0
    tree = tmp_path / "data"
    make_tree(tree, seed=12)
    assert run_cli("backup", str(tree), env=env).code == 0

    synced = run_cli("copy", env=env)
    assert synced.code == 0, synced
    assert "copied 1 snapshots" in synced.stdout
    listed = run_cli("--json", "-r", "offsite", "snapshots", env=env)
    assert listed.code == 0, listed
    [snapshot] = json.loads(listed.stdout)
    assert snapshot["extra"]["origin"]["snapshot"]
    assert run_cli("copy", env=env).stdout.startswith("copied 0 snapshots")


def test_without_a_source_passphrase_copy_says_which_variable_to_set(
    tmp_path: Path, secrets_dir: Path, s3_env: dict[str, str]
) -> None:
    main, other = str(tmp_path / "a"), str(tmp_path / "b")
    assert (
        run_cli(*FAST_INIT, env={"LIFEBOAT_REPO": main, "LIFEBOAT_PASSWORD_FILE": str(secrets_dir / "main")}).code == 0
    )
    env = {"LIFEBOAT_REPO": other, "LIFEBOAT_PASSWORD_FILE": str(secrets_dir / "offsite")}
    assert run_cli(*FAST_INIT, env=env).code == 0
    failed = run_cli("copy", "--from", main, "--all", env=env)
    assert failed.code == ExitCode.USAGE
    assert "LIFEBOAT_FROM_PASSWORD_FILE" in failed.stderr
    wrong = run_cli(
        "copy", "--from", main, "--all", env={**env, "LIFEBOAT_FROM_PASSWORD_FILE": str(secrets_dir / "offsite")}
    )
    assert wrong.code == ExitCode.WRONG_PASSPHRASE
    nothing = run_cli("copy", "--from", main, env={**env, "LIFEBOAT_FROM_PASSWORD_FILE": str(secrets_dir / "main")})
    assert nothing.code == ExitCode.USAGE
    assert "--all" in nothing.stderr


def _attempt_refused(locks: Path, held: str, process: subprocess.Popen[bytes]) -> None:
    """Return once another taker has written a lock beside ``held`` and removed it again — it
    saw ``held`` and backed off — or once ``process`` has ended."""
    deadline = time.monotonic() + 120
    seen: str | None = None
    while process.poll() is None and time.monotonic() < deadline:
        others = {entry.name for entry in os.scandir(locks) if not entry.name.startswith(".")} - {held}
        if seen is None and others:
            seen = next(iter(others))
        elif seen is not None and seen not in others:
            return
        time.sleep(0.0005)


def test_copy_waits_for_a_locked_destination_as_long_as_its_configured_lock_wait(
    tmp_path: Path, secrets_dir: Path
) -> None:
    main, offsite = tmp_path / "main-repo", tmp_path / "offsite-repo"
    config = tmp_path / "lifeboat.yaml"
    config.write_text(
        f"""
repositories:
  main: {{url: {main}, password_file: {secrets_dir / "main"}}}
  offsite: {{url: {offsite}, password_file: {secrets_dir / "offsite"}, lock_wait: 5m}}
"""
    )
    env = {"LIFEBOAT_CONFIG": str(config)}
    assert run_cli("-r", "main", *FAST_INIT, env=env).code == 0
    assert run_cli("-r", "offsite", *FAST_INIT, env=env).code == 0
    tree = tmp_path / "data"
    make_tree(tree, seed=13)
    assert run_cli("-r", "main", "backup", str(tree), env=env).code == 0

    lock = Repository.open(LocalBackend(offsite), OTHER_PASSPHRASE).lock(exclusive=True, operation="prune")
    try:
        copying = subprocess.Popen(
            [sys.executable, "-m", "lifeboat", "copy", "--from", "main", "--to", "offsite", "--all"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _attempt_refused(offsite / "locks", lock.record.id, copying)
    finally:
        lock.release()
    out, err = copying.communicate(timeout=300)
    assert copying.returncode == 0, err.decode()  # without the wait: exit 11, "the repository is locked"
    assert "copied 1 snapshots" in out.decode()
