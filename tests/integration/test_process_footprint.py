"""What a ``lifeboat`` process loads: each command builds and imports only its own command
module (the table in app/cli/main.py is lazy), and the commands that move data never load the
system's OpenSSL through ``hashlib`` (``_hashlib``: 4 MiB of resident memory; core/tokens.py).

Real processes, run the way a user runs them; each reports the modules it had loaded when it
exited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE

REPORTER = """
import atexit, json, sys
atexit.register(lambda: sys.stderr.write("LOADED " + json.dumps(sorted(sys.modules)) + "\\n"))
sys.argv = ["lifeboat", *sys.argv[1:]]
from lifeboat.app.cli.entry import main
main()
"""


def _loaded(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    password = tmp_path / "passphrase"
    password.write_bytes(PASSPHRASE + b"\n")
    env = {
        **os.environ,
        "LIFEBOAT_REPO": str(tmp_path / "repo"),
        "LIFEBOAT_PASSWORD_FILE": str(password),
        "LIFEBOAT_STATE_DIR": str(tmp_path / "state"),
    }
    env.pop("LIFEBOAT_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-c", REPORTER, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("LOADED "))
    return done.returncode, set(json.loads(line.removeprefix("LOADED ")))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "docs").mkdir(parents=True)
    (data / "docs" / "a.txt").write_bytes(b"alpha\n" * 1000)
    (data / "b.bin").write_bytes(os.urandom(300_000))
    return data


def test_each_command_imports_only_its_own_module_and_data_commands_skip_openssl_hashlib(
    tmp_path: Path, tree: Path
) -> None:
    runs = {
        "init": ("init",),
        "backup": ("backup", str(tree)),
        "snapshots": ("snapshots",),
        "restore": ("restore", "latest", "--target", str(tmp_path / "out")),
        "check": ("check",),
    }
    for command, args in runs.items():
        code, modules = _loaded(tmp_path, *args)
        assert code == 0, (command, code)
        commands = {m for m in modules if m.startswith("lifeboat.app.cli.") and m.endswith("_cmd")}
        assert commands == {f"lifeboat.app.cli.{command}_cmd"}, command
        assert "_hashlib" not in modules, f"'lifeboat {command}' loaded hashlib's OpenSSL"
    restored = tmp_path / "out" / tree.relative_to("/")  # a snapshot keeps the absolute paths
    assert (restored / "docs" / "a.txt").read_bytes() == b"alpha\n" * 1000  # the restore was whole
    assert (restored / "b.bin").read_bytes() == (tree / "b.bin").read_bytes()


def test_a_routed_command_and_a_group_load_their_modules(tmp_path: Path) -> None:
    code, modules = _loaded(tmp_path, "backup", "postgres", "--help")
    assert code == 0
    assert "lifeboat.app.cli.backup_postgres_cmd" in modules
    assert "lifeboat.app.cli.backup_cmd" not in modules
    code, modules = _loaded(tmp_path, "key", "--help")
    assert code == 0
    assert {m for m in modules if m.endswith("_cmd")} == {"lifeboat.app.cli.key_cmd"}


def test_the_help_and_a_mistyped_command_still_see_every_command(tmp_path: Path) -> None:
    code, modules = _loaded(tmp_path, "--help")
    assert code == 0
    assert {"lifeboat.app.cli.backup_cmd", "lifeboat.app.cli.pg_cmd", "lifeboat.app.cli.wal_cmd"} <= modules
    done = subprocess.run(
        [sys.executable, "-m", "lifeboat", "snapshot"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "unknown command 'snapshot'" in done.stderr
    assert "did you mean snapshots?" in done.stderr
