"""Starting and stopping the test servers: free ports, readiness, logs, and finding the
programs that ``scripts/setup.sh`` installs. A program that is missing fails the test
that needs it, with the command that installs it — never a skip."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SETUP_HINT = "run 'bash scripts/setup.sh' (or 'make setup') as root to install the test servers"


def servers_dir() -> Path:
    """Where setup.sh puts server programs that are not Python packages (Azurite, sshd)."""
    override = os.environ.get("LIFEBOAT_TEST_SERVERS")
    if override:
        return Path(override)
    return (Path(sys.prefix) / "servers").resolve()


def venv_tool(name: str) -> str:
    """A console script installed into this Python's environment (moto_server, rclone, …)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"test server program {name!r} is not installed; {SETUP_HINT}", pytrace=False)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A server subprocess whose output goes to a log file; killed on :meth:`stop`."""

    def __init__(self, name: str, argv: list[str], log: Path, *, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self._env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(self._env or {})},
                start_new_session=True,
            )
        return self

    def wait_for_port(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(
                    f"{self.name} exited with status {self.proc.returncode} at start-up:\n{self.tail()}", pytrace=False
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"{self.name} did not listen on port {port} within {timeout:.0f}s:\n{self.tail()}", pytrace=False)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def kill(self) -> None:
        """Stop at once, like a crashed server (SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
