"""How Lifeboat reaches a Redis server with ``redis-cli``: the connection's arguments, the
password's environment, and ``INFO`` read into a record.

The password is never an argument (``-a`` shows in ``ps``): redis-cli reads it from
``REDISCLI_AUTH``, which the environment built here carries.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lifeboat.errors import SourceError
from lifeboat.sources.redis.programs import find

INFO_TIMEOUT_SECONDS = 60


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


def run_command(connection: RedisConnection, *args: str, timeout: float = INFO_TIMEOUT_SECONDS) -> str:
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


@dataclass(frozen=True)
class ServerInfo:
    """What ``INFO`` says about the server's data: its version, keys per database, persistence."""

    version: str
    mode: str
    databases: dict[str, dict[str, int]]  # "db0" → {"keys": …, "expires": …}
    aof_enabled: bool

    @property
    def keys(self) -> int:
        return sum(db.get("keys", 0) for db in self.databases.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "mode": self.mode,
            "keys": self.keys,
            "databases": self.databases,
            "aof_enabled": self.aof_enabled,
        }


def parse_info(text: str) -> ServerInfo:
    """``INFO``'s ``field:value`` lines (sections marked ``# Name``) into a :class:`ServerInfo`."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if sep:
            values[key] = value
    if "redis_version" not in values:
        raise SourceError("the server's INFO reply has no redis_version: is this a Redis server?")
    databases: dict[str, dict[str, int]] = {}
    for key, value in values.items():
        if key.startswith("db") and key[2:].isdigit():
            counters: dict[str, int] = {}
            for pair in value.split(","):
                name, _, number = pair.partition("=")
                if number.isdigit():
                    counters[name] = int(number)
            databases[key] = counters
    return ServerInfo(
        version=values["redis_version"],
        mode=values.get("redis_mode", ""),
        databases=databases,
        aof_enabled=values.get("aof_enabled") == "1",
    )


def server_info(connection: RedisConnection) -> ServerInfo:
    return parse_info(run_command(connection, "INFO"))


def _last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
