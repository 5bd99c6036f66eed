"""A real ``lifeboat serve`` process for the daemon's tests: its JSON log lines read as they
come, conditions waited on (log lines, catalog rows), never fixed sleeps."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSPHRASE, CliResult, run_cli

WAIT = 60.0  # seconds a condition may take on this shared 2-core machine; never reached when all is well


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """One ``lifeboat serve`` process."""

    process: subprocess.Popen[bytes]
    port: int
    records: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            text = line.decode("utf-8", "replace").rstrip("\n")
            with self.changed:
                self.raw.append(text)
                try:
                    self.records.append(json.loads(text))
                except ValueError:
                    self.records.append({"event": "not json", "line": text})
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def start(self) -> None:
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        """Wait until ``predicate()`` is true (checked at each log line, and each second for
        conditions outside the log, like catalog rows); its value."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; log:\n" + "\n".join(self.raw[-40:]))
                self.changed.wait(min(left, 1.0))

    def logged(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            r for r in list(self.records) if r.get("event") == event and all(r.get(k) == v for k, v in fields.items())
        ]

    def wait_logged(self, event: str, count: int = 1, **fields: Any) -> list[dict[str, Any]]:
        return self.wait_for(
            lambda: (found := self.logged(event, **fields)) and len(found) >= count and found,
            f"{count}× {event} {fields}",
        )

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = WAIT) -> int:
        code = self.process.wait(timeout)
        if self.reader is not None:
            self.reader.join(10)
        return code

    def get(self, path: str) -> tuple[int, str, str]:
        import httpx

        response = httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=10)
        return response.status_code, response.headers.get("content-type", ""), response.text


@dataclass
class World:
    """A repository, a configuration file, and how to start the daemon on them."""

    root: Path
    env: dict[str, str]
    port: int
    served: list[Served] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "lifeboat.yaml"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def write_config(self, sources: str, *, daemon: str = "", repositories: str = "", health_check: str = "1h") -> None:
        self.config.write_text(
            f"""
repositories:
  main:
    url: {self.root / "repo"}
    password_file: {self.root / "passphrase"}
{repositories}
default_repository: main
daemon:
  listen: 127.0.0.1:{self.port}
  shutdown_deadline: 20s
  health_check: {health_check}
  archiving_check: 1h
{daemon}
sources:
{sources}
"""
        )

    def serve(self, *extra: str, env: dict[str, str] | None = None) -> Served:
        process = subprocess.Popen(
            [sys.executable, "-m", "lifeboat", "-c", str(self.config), "serve", *extra],
            env={**os.environ, **self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        served = Served(process, self.port)
        served.start()
        self.served.append(served)
        served.wait_logged("daemon started")
        return served

    def cli(self, *args: str) -> CliResult:
        return run_cli("-c", str(self.config), *args, env=self.env)

    def catalog(self) -> Any:
        from lifeboat.app.daemon.catalog import open_catalog

        return open_catalog(None, state_dir=str(self.state), host=socket.gethostname())

    def runs(self, job: str | None = None, status: str | None = None) -> list[Any]:
        catalog = self.catalog()
        try:
            return list(reversed(catalog.runs(job=job, status=status, limit=1000)))  # oldest first
        finally:
            catalog.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    password_file = tmp_path / "passphrase"
    password_file.write_bytes(PASSPHRASE + b"\n")
    password_file.chmod(0o600)
    env = {"LIFEBOAT_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    for name in ("LIFEBOAT_PASSWORD", "LIFEBOAT_PASSWORD_FILE", "LIFEBOAT_PASSWORD_COMMAND", "LIFEBOAT_CONFIG",
                 "LIFEBOAT_REPO"):  # fmt: skip
        os.environ.pop(name, None)
    made = World(tmp_path, env, free_port())
    made.write_config("  {}\n")
    init = made.cli("init")
    assert init.code == 0, init
    yield made
    for served in made.served:
        if served.process.poll() is None:
            served.process.send_signal(signal.SIGKILL)
            served.process.wait(30)
