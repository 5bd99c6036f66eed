"""Fixtures every test level shares: repositories, the CLI as a user runs it, sample trees."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from lifeboat.repository.crypto.keys import KdfParams
from lifeboat.repository.repo import Repository
from lifeboat.storage.local import LocalBackend
from lifeboat.storage.memory import MemoryBackend

# The machine is small and shared: generation speed is not what these tests check.
settings.register_profile(
    "lifeboat", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("lifeboat")

# Unit tests derive keys often; the CLI tests use the real defaults.
FAST_KDF = KdfParams(time_cost=1, memory_kib=1024, parallelism=1)
PASSPHRASE = b"correct horse battery staple"


_UNGROUPED = pytest.StashKey[str]()


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Under ``--dist loadgroup`` (make test) pytest-xdist sends a group's tests to one worker by
    adding the group to their node ids. When it cannot (a pytest it does not know), the groups are
    ignored without a word and tests that share a module's server or daemon race each other on
    several workers: every test of such a run fails, saying why."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    ungrouped = [
        item.nodeid
        for item in session.items
        if (mark := item.get_closest_marker("xdist_group"))
        and not item.nodeid.endswith(f"@{mark.args[0] if mark.args else mark.kwargs.get('name', 'default')}")
    ]
    if ungrouped:
        session.config.stash[_UNGROUPED] = (
            f"pytest-xdist did not group {len(ungrouped)} tests marked xdist_group (first: {ungrouped[0]}); "
            "hint: use the pytest and pytest-xdist versions pyproject.toml allows (make setup)"
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if problem := item.config.stash.get(_UNGROUPED, None):
        pytest.fail(problem, pytrace=False)


@pytest.fixture(autouse=True, scope="session")
def _private_state_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every ``lifeboat`` a test runs keeps its state (the record cache, the audit log) in a
    directory of the test session unless the test names its own: never the host's
    /var/lib/lifeboat, where every test's commands would share one audit log (and its anchors
    would land in the tests' repositories)."""
    if os.environ.get("LIFEBOAT_STATE_DIR"):
        yield
        return
    os.environ["LIFEBOAT_STATE_DIR"] = str(tmp_path_factory.mktemp("lifeboat-state"))
    try:
        yield
    finally:
        os.environ.pop("LIFEBOAT_STATE_DIR", None)


@pytest.fixture
def memory_repo() -> Repository:
    return Repository.init(MemoryBackend(), PASSPHRASE, kdf=FAST_KDF)


@pytest.fixture
def local_repo(tmp_path: Path) -> Repository:
    return Repository.init(LocalBackend(tmp_path / "repo"), PASSPHRASE, kdf=FAST_KDF)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes

    def __repr__(self) -> str:  # shown by pytest when an assertion fails
        return f"CliResult(code={self.code}, stdout={self.stdout[-2000:]!r}, stderr={self.stderr[-2000:]!r})"


Cli = Callable[..., CliResult]


def run_cli(
    *args: str, env: dict[str, str] | None = None, input: bytes | None = None, timeout: float = 300
) -> CliResult:
    done = subprocess.run(
        [sys.executable, "-m", "lifeboat", *args],
        env={**os.environ, **(env or {})},
        input=input,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
        done.stdout,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment naming a fresh repository and a password file (never argv)."""
    password_file = tmp_path / "passphrase"
    password_file.write_bytes(PASSPHRASE + b"\n")
    password_file.chmod(0o600)
    env = {
        "LIFEBOAT_REPO": str(tmp_path / "repo"),
        "LIFEBOAT_PASSWORD_FILE": str(password_file),
        "LIFEBOAT_STATE_DIR": str(tmp_path / "state"),  # the record cache: never the host's
    }
    for name in ("LIFEBOAT_PASSWORD", "LIFEBOAT_PASSWORD_COMMAND", "LIFEBOAT_CONFIG"):
        os.environ.pop(name, None)
    return env


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Iterator[Cli]:
    """Run ``lifeboat`` in a subprocess with the test repository's environment."""

    def run(*args: str, env: dict[str, str] | None = None, input: bytes | None = None) -> CliResult:
        return run_cli(*args, env={**cli_env, **(env or {})}, input=input)

    yield run
