"""Replication tests use the storage servers (started once per session; see tests/servers)."""

from tests.servers.fixtures import azurite_server, moto_server, server_logs, sshd_server

__all__ = ["azurite_server", "moto_server", "server_logs", "sshd_server"]
