"""``restore redis … --plan``: the RDB file it would write, refused as the restore refuses
(an existing RDB, a running server); nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.logical.test_redis import fill, repo, restore_dir
from tests.servers.redis import RedisServer, redis_server

__all__ = ["redis_server", "repo", "restore_dir"]  # fixtures, used by name

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("redis")]


def test_a_plan_names_the_rdb_and_refuses_what_the_restore_refuses(
    repo: Cli, redis_server: RedisServer, restore_dir: Path
) -> None:
    fill(redis_server)
    assert repo("backup", "--source", "cache").code == 0
    target = restore_dir / "fresh"
    planned = repo("--json", "restore", "redis", "latest", "--target-dir", str(target), "--plan")
    assert planned.code == 0, planned
    plan = json.loads(planned.stdout)
    (write,) = plan["writes"]
    assert (write["what"], write["where"], write["state"]) == ("RDB file", str(target / "dump.rdb"), "absent")
    assert write["bytes"] > 0 and plan["feasible"] is True
    assert not target.exists()

    (restore_dir / "dump.rdb").write_bytes(b"the server's own file")
    args = ("restore", "redis", "latest", "--target-dir", str(restore_dir))
    real, refused = repo(*args), repo(*args, "--plan")
    assert refused.code == real.code == 1 and refused.stderr == real.stderr, refused
    assert (restore_dir / "dump.rdb").read_bytes() == b"the server's own file"

    running = repo("restore", "redis", "latest", "--target-dir", str(redis_server.directory), "--force", "--plan")
    assert running.code == 1 and f"is running in {redis_server.directory}" in running.stderr
