"""The integration tests' servers (started once per session; see tests/servers)."""

from tests.servers.fixtures import moto_server, server_logs

__all__ = ["moto_server", "server_logs"]
