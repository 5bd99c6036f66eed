"""What ``INFO`` says about a Redis server, read into the snapshot's record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lifeboat.errors import SourceError
from lifeboat.sources.tools.redis import RedisConnection, run_command


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
