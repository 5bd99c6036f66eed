"""Typed wrappers around Redis's programs: redis-cli (a connection's arguments, one command,
the RDB transfer) and redis-check-rdb.

The password is never an argument (``-a`` shows in ``ps``): redis-cli reads it from
``REDISCLI_AUTH``, which a connection's environment carries.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from lifeboat.errors import MissingTool, SourceError

COMMAND_TIMEOUT_SECONDS = 60
CHECK_TIMEOUT_SECONDS = 3600


def find(name: str) -> str:
    """The path of ``name`` on PATH (or Debian's /usr/bin); MissingTool if it is not installed."""
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/local/bin")
    if found is None:
        package = "redis-tools" if name in ("redis-cli", "redis-check-rdb") else "redis-server"
        raise MissingTool(f"{name} was not found on PATH", hint=f"install it (Debian: apt-get install {package})")
    return found


@dataclass(frozen=True)
class RedisConnection:
    """Where the server is; ``env`` is redis-cli's whole environment (it may hold REDISCLI_AUTH)."""

    host: str | None = None
    port: int | None = None
    socket: str | None = None
    user: str | None = None
    tls: bool = False
    cacert: str | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def argv(self) -> list[str]:
        """redis-cli's connection arguments (never the password)."""
        args: list[str] = []
        if self.socket:
            args += ["-s", self.socket]
        else:
            if self.host:
                args += ["-h", self.host]
            if self.port:
                args += ["-p", str(self.port)]
        if self.user:
            args += ["--user", self.user]
        if self.tls:
            args.append("--tls")
        if self.cacert:
            args += ["--cacert", self.cacert]
        return args

    def describe(self) -> str:
        if self.socket:
            return self.socket
        return f"{self.host or '127.0.0.1'}:{self.port or 6379}"

    def command(self, *args: str) -> list[str]:
        return [find("redis-cli"), *self.argv(), *args]

    def rdb_transfer(self) -> list[str]:
        """redis-cli asking the server for its RDB, written to standard output."""
        return self.command("--rdb", "-")


def run_command(connection: RedisConnection, *args: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> str:
    """Run one redis-cli command; its reply (standard output). A connection or authentication
    failure is a SourceError with redis-cli's last words."""
    try:
        done = subprocess.run(
            connection.command(*args),
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env=dict(connection.env),
        )
    except subprocess.TimeoutExpired:
        raise SourceError(f"redis-cli {args[0]} got no answer from {connection.describe()} in {timeout:.0f}s") from None
    reply = done.stdout.decode(errors="replace")
    said = _last_line(done.stderr) or _last_line(done.stdout)
    if done.returncode != 0 or reply.startswith(("NOAUTH", "WRONGPASS", "ERR", "Could not connect")):
        raise SourceError(
            f"redis-cli {args[0]} failed against {connection.describe()}: {said or f'exit status {done.returncode}'}",
            hint="no snapshot was saved; check the connection and the password (password_file or REDISCLI_AUTH)",
        )
    return reply


def run_check_rdb(path: str) -> tuple[int, str]:
    """``redis-check-rdb PATH``: its exit status and its report (-1 when it timed out)."""
    try:
        done = subprocess.run(
            [find("redis-check-rdb"), path],
            capture_output=True,
            timeout=CHECK_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return -1, f"redis-check-rdb did not finish within {CHECK_TIMEOUT_SECONDS}s"
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def _last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
