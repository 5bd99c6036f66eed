"""A real ``lifeboat serve`` for the API's tests: a real repository with a real backup, the
daemon started as a process on a free port (``--listen 127.0.0.1:0``, the port read from its
``daemon started`` log line), and one token per role made with ``lifeboat token create``.

    def test_something(api: Api) -> None:
        response = api.client("operator").post("/api/v1/jobs/backup:files/run")
        assert response.status_code == 202
        api.world.cli("snapshots", "--json")            # the CLI on the same configuration
        api.served.wait_logged("run finished", job="backup:files")

``api`` is one daemon per test module (start-up takes a few seconds); a test that changes it
for good (revokes a token of ROLES, reloads the configuration) uses ``fresh_api`` or
``start_api`` with its own directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSPHRASE, CliResult, run_cli
from tests.daemon.conftest import WAIT, Served

ROLES = ("viewer", "operator", "admin")
SECRET_ENV = ("LIFEBOAT_PASSWORD", "LIFEBOAT_PASSWORD_FILE", "LIFEBOAT_PASSWORD_COMMAND", "LIFEBOAT_CONFIG",
              "LIFEBOAT_REPO")  # fmt: skip


@dataclass
class Api:
    """A served daemon and how to call it."""

    root: Path
    env: dict[str, str]
    served: Served
    base_url: str  # http://127.0.0.1:PORT (https:// with TLS)
    tokens: dict[str, str]  # role -> the token of that role, named "<role>-token"
    verify: Any = True  # httpx's verify= (a CA file for a self-signed certificate)
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "lifeboat.yaml"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def port(self) -> int:
        return self.served.port

    def cli(self, *args: str) -> CliResult:
        return run_cli("-c", str(self.config), *args, env=self.env)

    def client(self, role: str | None = None, *, token: str | None = None, **options: Any) -> httpx.Client:
        """An HTTP client on the daemon, with the token of ``role`` (or ``token``) as Bearer."""
        headers = dict(options.pop("headers", {}) or {})
        chosen = token if token is not None else self.tokens[role] if role is not None else None
        if chosen is not None:
            headers["Authorization"] = f"Bearer {chosen}"
        made = httpx.Client(base_url=self.base_url, headers=headers, timeout=30, verify=self.verify, **options)
        self.clients.append(made)
        return made

    def token(self, name: str, role: str, *extra: str) -> str:
        """A new token made with ``lifeboat token create`` (its one line of output)."""
        made = self.cli("token", "create", "--name", name, "--role", role, *extra)
        assert made.code == 0, made
        return made.stdout.strip()

    def audit_entries(self) -> list[dict[str, Any]]:
        """The entries of the audit log at its default place (``<state dir>/audit.jsonl``)."""
        return self.audit_entries_at(self.state / "audit.jsonl")

    def audit_entries_at(self, path: Path) -> list[dict[str, Any]]:
        from lifeboat.app.observability.audit import AuditLog

        return AuditLog(path).entries()

    def stop(self) -> None:
        for made in self.clients:
            made.close()
        if self.served.process.poll() is None:
            self.served.signal(signal.SIGTERM)
            try:
                self.served.wait_exit(WAIT)
            except subprocess.TimeoutExpired:
                self.served.process.kill()
                self.served.process.wait(30)


def write_config(root: Path, *, daemon: str = "", extra: str = "") -> None:
    """The configuration: ``daemon`` lines go into its ``daemon:`` section, ``extra`` at the top."""
    (root / "lifeboat.yaml").write_text(
        f"""
repositories:
  main:
    url: {root / "repo"}
    password_file: {root / "passphrase"}
default_repository: main
daemon:
  shutdown_deadline: 20s
  health_check: 1h
  archiving_check: 1h
{daemon}
sources:
  files:
    type: files
    paths: [{root / "data"}]
    schedule:
      backup: "0 3 * * *"
      verify: "0 4 * * *"
{extra}
"""
    )


def prepare(root: Path, *, daemon: str = "", extra: str = "") -> dict[str, str]:
    """A repository with one backup of the source ``files`` under ``root``; the CLI's environment."""
    root.mkdir(parents=True, exist_ok=True)
    password_file = root / "passphrase"
    password_file.write_bytes(PASSPHRASE + b"\n")
    password_file.chmod(0o600)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "a.txt").write_text("hello\n")
    (root / "data" / "b.txt").write_text("world\n" * 100)
    write_config(root, daemon=daemon, extra=extra)
    env = {"LIFEBOAT_STATE_DIR": str(root / "state"), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    for name in SECRET_ENV:
        os.environ.pop(name, None)
    for args in (("init",), ("backup", "--source", "files")):
        done = run_cli("-c", str(root / "lifeboat.yaml"), *args, env=env)
        assert done.code == 0, done
    return env


def serve(root: Path, env: dict[str, str], *, scheme: str = "http", verify: Any = True) -> Api:
    """Start ``lifeboat serve`` on a free port; tokens of each role made first."""
    tokens: dict[str, str] = {}
    for role in ROLES:
        made = run_cli("-c", str(root / "lifeboat.yaml"), "token", "create", "--name", f"{role}-token",
                       "--role", role, env=env)  # fmt: skip
        assert made.code == 0, made
        tokens[role] = made.stdout.strip()
    process = subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "-c", str(root / "lifeboat.yaml"), "serve", "--listen", "127.0.0.1:0"],
        env={**{k: v for k, v in os.environ.items() if k not in SECRET_ENV}, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    served = Served(process, 0)
    served.start()
    try:
        started = served.wait_logged("daemon started")[0]
    except BaseException:
        process.kill()
        process.wait(30)
        raise
    served.port = int(str(started["listen"]).rsplit(":", 1)[1])
    return Api(root, env, served, f"{scheme}://127.0.0.1:{served.port}", tokens, verify=verify)


def start_api(root: Path, *, daemon: str = "", extra: str = "", scheme: str = "http", verify: Any = True) -> Api:
    return serve(root, prepare(root, daemon=daemon, extra=extra), scheme=scheme, verify=verify)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One served daemon for the module (a repository with one backup of ``files``; tokens
    ``viewer-token``, ``operator-token``, ``admin-token`` in ``api.tokens``)."""
    made = start_api(tmp_path_factory.mktemp("api"))
    yield made
    made.stop()


@pytest.fixture
def fresh_api(tmp_path: Path) -> Iterator[Api]:
    """A served daemon of the test's own."""
    made = start_api(tmp_path / "world")
    yield made
    made.stop()


@pytest.fixture
def api_factory(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """``api_factory(daemon="  tls: …", extra="audit: …", scheme="https", verify=ca)``: daemons of
    the test's own."""
    started: list[Api] = []

    def factory(**options: Any) -> Api:
        made = start_api(tmp_path / f"world{len(started)}", **options)
        started.append(made)
        return made

    yield factory
    for made in started:
        made.stop()
