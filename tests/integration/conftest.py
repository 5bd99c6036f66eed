"""The integration tests' servers (started once per session; see tests/servers), and a
repository owned by an unprivileged user, for faults a permission produces for real."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
from tests.e2e.test_failed_source import Nobody
from tests.servers.fixtures import moto_server, server_logs

__all__ = ["as_nobody", "moto_server", "server_logs"]


@pytest.fixture
def as_nobody() -> Iterator[Nobody]:
    """A repository the user ``nobody`` created and owns; root may take files from it (root reads everything)."""
    work = Path(tempfile.mkdtemp(prefix="lifeboat-nobody-"))
    os.chmod(work, 0o755)
    (work / "pass").write_bytes(PASSPHRASE)
    shutil.chown(work, "nobody")
    shutil.chown(work / "pass", "nobody")
    user = Nobody(work)
    assert user.run("init", "--kdf-memory", "8MiB").code == 0
    yield user
    shutil.rmtree(work, ignore_errors=True)
