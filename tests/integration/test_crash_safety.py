"""A backup killed with SIGKILL at any moment never damages the repository."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Cli, CliResult
from tests.integration.trees import describe

MiB = 1024 * 1024
TRIALS = 24


def write_source(root: Path, rng: random.Random, *, fraction: float = 1.0) -> None:
    """64 files of mixed sizes (~100 MiB); rewrite ``fraction`` of them with new content."""
    root.mkdir(exist_ok=True)
    for i in range(64):
        path = root / f"f{i:02d}.bin"
        if path.exists() and rng.random() > fraction:
            continue
        size = rng.choice([10_000, 300_000, 1 * MiB, 3 * MiB])
        if i % 2:
            path.write_bytes(rng.randbytes(size))
        else:
            path.write_bytes((f"row {rng.random()} " * (size // 24 + 1)).encode()[:size])


def start_backup(env: dict[str, str], source: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "backup", str(source)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_a_checkable_repository(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    rng = random.Random(20261122)
    source = tmp_path / "src"
    write_source(source, rng)
    assert cli("init").code == 0

    proc = start_backup(cli_env, source)
    assert proc.wait(timeout=300) == 0
    # How long a trial's backup takes, on this machine at this moment: the kills fall inside it.
    write_source(source, rng, fraction=0.3)
    started = time.monotonic()
    proc = start_backup(cli_env, source)
    assert proc.wait(timeout=300) == 0
    trial_duration = time.monotonic() - started

    outcomes = {"killed": 0, "finished": 0}
    for trial in range(TRIALS):
        write_source(source, rng, fraction=0.3)
        proc = start_backup(cli_env, source)
        time.sleep(rng.uniform(0.0, trial_duration))
        proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=60)
        outcomes["killed" if code == -signal.SIGKILL else "finished"] += 1
        checked: CliResult = cli("check")
        assert checked.code == 0, f"trial {trial}: {checked}"
        assert "no errors were found" in checked.stdout

    assert outcomes["killed"] >= TRIALS // 2, outcomes
    # The repository still takes a backup that restores exactly.
    describe(source)
    expected = describe(source)
    done = cli("backup", str(source))
    assert done.code == 0, done
    assert cli("check", "--read-data").code == 0
    target = tmp_path / "restored"
    restored = cli("restore", f"latest:{source}", "--target", str(target))
    assert restored.code == 0, restored
    assert describe(target) == expected
    # and prune clears what the killed backups left behind, without harming any snapshot
    pruned = cli("prune", "--safety-margin", "0s")
    assert pruned.code == 0, pruned
    assert not list((tmp_path / "repo").rglob(".tmp-*"))  # half-written files of killed writers too
    assert cli("check", "--read-data").code == 0
