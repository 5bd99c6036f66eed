"""Several processes on one repository: backups share it; prune never takes their data."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import Cli
from tests.integration.trees import describe

MiB = 1024 * 1024


def fill(root: Path, files: int, size: int, seed: int) -> None:
    import random

    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"{i:03d}.bin").write_bytes(rng.randbytes(size))


def popen(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lifeboat", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def held_backup(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    """A ``backup --stdin`` that holds its lock, running, until its standard input is closed."""
    return subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "backup", "--stdin", "--stdin-name", name],
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def published_locks(repo: Path) -> list[Path]:
    """Lock objects in a local repository; a lock still being written is a hidden temporary file."""
    locks = repo / "locks"
    return [p for p in locks.iterdir() if not p.name.startswith(".")] if locks.exists() else []


def wait_for_lock(repo: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if published_locks(repo):
            return
        time.sleep(0.02)
    raise AssertionError("the backup never took its lock")


def wait_for_another_lock(repo: Path, held: Path, timeout: float = 120) -> None:
    """Return once a lock other than ``held`` has been published: another process tried to lock.

    A lock that conflicts lives for one attempt only (milliseconds); each retry is another chance.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(lock.name != held.name for lock in published_locks(repo)):
            return
        time.sleep(0.001)
    raise AssertionError("no other process tried to lock the repository")


def test_two_backups_at_once_both_succeed(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    fill(one, 40, 1 * MiB, seed=1)
    fill(two, 40, 1 * MiB, seed=2)
    (two / "shared.bin").write_bytes((one / "000.bin").read_bytes())  # both store this blob
    assert cli("init").code == 0
    first, second = popen(cli_env, "backup", str(one)), popen(cli_env, "backup", str(two))
    assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    assert second.wait(timeout=300) == 0, second.stderr.read() if second.stderr else ""
    assert cli("check", "--read-data").code == 0
    for source in (one, two):
        target = tmp_path / f"restored-{source.name}"
        assert cli("restore", f"latest:{source}", "--path", str(source), "--target", str(target)).code == 0
        assert describe(target) == describe(source)


def test_prune_refuses_while_a_backup_runs_and_waits_with_lock_wait(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    repo = Path(cli_env["LIFEBOAT_REPO"])
    old = tmp_path / "old"
    fill(old, 30, 2 * MiB, seed=5)
    assert cli("init").code == 0
    assert cli("backup", str(old)).code == 0
    # Forget the only snapshot of `old`: its blobs are now garbage for prune ...
    assert cli("forget", "latest").code == 0
    # ... unless a running backup deduplicates against them: the stream holds the same data.
    data = b"".join(path.read_bytes() for path in sorted(old.iterdir()))
    backup = held_backup(cli_env, "new.bin")
    assert backup.stdin is not None
    backup.stdin.write(data[: len(data) // 2])  # returns once the backup has read all but a pipe's worth
    backup.stdin.flush()
    wait_for_lock(repo)
    (held,) = published_locks(repo)
    refused = cli("prune", "--safety-margin", "0s")
    assert backup.poll() is None  # still running: it waits for the rest of its input
    assert refused.code == 11, refused
    assert "the repository is locked" in refused.stderr and "for backup by" in refused.stderr
    waited = popen(cli_env, "prune", "--safety-margin", "0s", "--lock-wait", "5m")
    wait_for_another_lock(repo, held)  # the waiting prune tried, and found the backup's lock
    assert waited.poll() is None and backup.poll() is None
    backup.stdin.write(data[len(data) // 2 :])
    backup.stdin.close()
    assert backup.wait(timeout=300) == 0, backup.stderr.read() if backup.stderr else ""
    assert waited.wait(timeout=300) == 0, waited.stderr.read() if waited.stderr else ""
    assert cli("check", "--read-data").code == 0
    target = tmp_path / "restored"
    assert cli("restore", "latest", "--target", str(target)).code == 0
    assert (target / "new.bin").read_bytes() == data


def test_a_stale_lock_of_a_dead_process_does_not_block(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    import signal

    repo = Path(cli_env["LIFEBOAT_REPO"])
    assert cli("init").code == 0
    victim = held_backup(cli_env, "victim.bin")  # holds its lock until killed
    wait_for_lock(repo)
    assert victim.poll() is None
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert published_locks(repo)  # the dead backup left its lock behind
    pruned = cli("prune", "--safety-margin", "0s")  # exclusive: would conflict with a live lock
    assert pruned.code == 0, pruned
    unlocked = cli("unlock")
    assert unlocked.code == 0 and "1 locks removed" in unlocked.stdout
    assert not published_locks(repo)
