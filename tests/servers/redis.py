"""A throwaway Redis server for the redis source's tests: redis-server 7 as ``srvtest`` in a
``/tmp`` directory of its own, on a free port, with a password, ready when it answers PING.

``--repl-diskless-sync-delay 0``: without it every ``redis-cli --rdb`` waits 5 s for more
replicas (docs: /work/shared/research/test-servers.md §2). A program that is missing fails the
test with the set-up hint, never a skip.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.process import SETUP_HINT, free_port

SERVER_USER = "srvtest"
PASSWORD = "redis-test-secret-7f3a"  # a test server's fixed credential


def program(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")
    if found is None:
        pytest.fail(f"{name} is not installed; {SETUP_HINT}", pytrace=False)
    return found


def server_dir(prefix: str = "redis-") -> Path:
    """A new directory under /tmp owned by the server's user (pytest's tmp_path is closed to it)."""
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    entry = pwd.getpwnam(SERVER_USER)
    os.chown(directory, entry.pw_uid, entry.pw_gid)
    return directory


@dataclass
class RedisServer:
    """A running redis-server: its port, password (or none), directory and process."""

    port: int
    directory: Path
    password: str | None
    process: subprocess.Popen[bytes]
    log: Path

    def env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", os.defpath)}
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        return env

    def cli(self, *args: str, db: int = 0, input: bytes | None = None) -> str:
        """``redis-cli ARGS`` (with ``input``: its last argument read from standard input, -x)."""
        done = subprocess.run(
            [program("redis-cli"), "-p", str(self.port), "-n", str(db), *(["-x"] if input is not None else []), *args],
            input=input,
            capture_output=True,
            env=self.env(),
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done
        return done.stdout.decode(errors="surrogateescape")  # values may be any bytes

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(30)


def start_redis(directory: Path, *, password: str | None = None, dbfilename: str = "dump.rdb") -> RedisServer:
    """redis-server as srvtest on ``directory`` (loading its RDB, if any), without persistence."""
    port = free_port()
    log = directory / "redis-test.log"
    argv = [
        program("redis-server"),
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--dbfilename", dbfilename,
        "--daemonize", "no", "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0",
        "--logfile", str(log),
    ]  # fmt: skip
    if password:
        argv += ["--requirepass", password]
    entry = pwd.getpwnam(SERVER_USER)
    process = subprocess.Popen(
        argv,
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=[],
        cwd=directory,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(directory)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port, directory, password, process, log)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else "(no log)"
            pytest.fail(f"redis-server exited with status {process.returncode}:\n{text[-2000:]}", pytrace=False)
        done = subprocess.run(
            [program("redis-cli"), "-p", str(port), "ping"], capture_output=True, env=server.env(), check=False
        )
        if done.stdout.strip() == b"PONG":
            return server
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"redis-server on port {port} did not answer PING in 60s", pytrace=False)
        time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One password-protected server for the session; tests flush it before they fill it."""
    server = start_redis(server_dir(), password=PASSWORD)
    yield server
    server.stop()  # its directory holds only its log (no saves, diskless transfers): kept
