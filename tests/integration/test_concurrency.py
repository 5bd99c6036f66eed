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
    old, new = tmp_path / "old", tmp_path / "new"
    fill(old, 30, 2 * MiB, seed=5)
    assert cli("init").code == 0
    assert cli("backup", str(old)).code == 0
    # Forget the only snapshot of `old`: its blobs are now garbage for prune ...
    assert cli("forget", "latest").code == 0
    # ... unless a running backup deduplicates against them: `new` holds the same data.
    fill(new, 30, 2 * MiB, seed=5)
    fill(new / "more", 60, 2 * MiB, seed=6)
    backup = popen(cli_env, "backup", str(new))
    wait_for_lock(repo)
    refused = cli("prune", "--safety-margin", "0s")
    if backup.poll() is None:  # the backup was still running: prune must have refused
        assert refused.code == 11, refused
        assert "the repository is locked" in refused.stderr and "for backup by" in refused.stderr
    waited = popen(cli_env, "prune", "--safety-margin", "0s", "--lock-wait", "5m")
    assert backup.wait(timeout=300) == 0
    assert waited.wait(timeout=300) == 0, waited.stderr.read() if waited.stderr else ""
    assert cli("check", "--read-data").code == 0
    target = tmp_path / "restored"
    assert cli("restore", f"latest:{new}", "--target", str(target)).code == 0
    assert describe(target) == describe(new)


def test_a_stale_lock_of_a_dead_process_does_not_block(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    import signal

    repo = Path(cli_env["LIFEBOAT_REPO"])
    source = tmp_path / "src"
    fill(source, 60, 2 * MiB, seed=9)
    assert cli("init").code == 0
    victim = popen(cli_env, "backup", str(source))
    wait_for_lock(repo)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert published_locks(repo)  # the dead backup left its lock behind
    pruned = cli("prune", "--safety-margin", "0s")  # exclusive: would conflict with a live lock
    assert pruned.code == 0, pruned
    unlocked = cli("unlock")
    assert unlocked.code == 0 and "1 locks removed" in unlocked.stdout
    assert not published_locks(repo)
