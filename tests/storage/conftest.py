"""The storage tests' servers (started once per session; see tests/servers)."""

from tests.servers.fixtures import (
    azurite_server,
    gcs_server,
    moto_server,
    rclone_server,
    server_logs,
    sshd_server,
)

__all__ = ["azurite_server", "gcs_server", "moto_server", "rclone_server", "server_logs", "sshd_server"]
