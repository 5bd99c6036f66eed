"""The integration tests' servers (started once per session; see tests/servers), and a
repository owned by an unprivileged user, for faults a permission produces for real."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.test_failed_source import Nobody, nobody_repository
from tests.servers.fixtures import moto_server, rclone_server, server_logs

__all__ = ["as_nobody", "moto_server", "rclone_server", "server_logs"]


@pytest.fixture
def as_nobody() -> Iterator[Nobody]:
    """A repository the user ``nobody`` created and owns; root may take files from it (root reads everything)."""
    yield from nobody_repository()
