"""The daemon watches WAL archiving of a real PostgreSQL cluster: a broken archive_command is
seen within archiving_check, logged once as CRITICAL, exported on /metrics, and its recovery
is logged once too — a state change, never a line per check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lifeboat.sources.tools.pgcluster import chown_tree
from tests.daemon.conftest import Served, free_port
from tests.postgres.conftest import OS_USER, WorldFactory, server_lifeboat, worlds  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-daemon")]


def test_archiving_failure_and_recovery_are_seen_logged_once_and_exported(worlds: WorldFactory) -> None:  # noqa: F811
    world = worlds()
    c = world.cluster
    port = free_port()
    config = world.base / "lifeboat.yaml"
    config.write_text(
        f"""
repositories:
  main:
    url: {world.repo_dir}
    password_file: {world.password_file}
daemon:
  listen: 127.0.0.1:{port}
  archiving_check: 1s
  health_check: 1h
sources:
  db:
    type: postgres
    data_directory: {c.data_dir}
    host: {c.socket_dir}
    port: {c.port}
    user: postgres
"""
    )
    chown_tree(config, OS_USER)
    env = {**os.environ, **world.env, "LIFEBOAT_REPO": "", "LIFEBOAT_CONFIG": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "-c", str(config), "serve"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    served = Served(process, port)
    served.start()
    try:
        first = served.wait_logged("archiving state changed", source="db")[0]
        assert (first["state"], first["previous"]) == ("OK", None), first

        c.psql("ALTER SYSTEM SET archive_command = 'false'")
        c.psql("SELECT pg_reload_conf()")
        switched: list[str] = []
        deadline = time.monotonic() + 60
        while int(c.psql("SELECT failed_count FROM pg_stat_archiver")) == 0:  # the archiver took the setting
            assert time.monotonic() < deadline, "the archiver never failed"
            c.psql("SELECT pg_logical_emit_message(false, 'daemon', 'a record to archive')")
            switched.append(world.switch_wal())
            time.sleep(0.3)  # the interval of this wait on the condition above
        stuck = c.psql("SELECT last_failed_wal FROM pg_stat_archiver")
        assert stuck in switched
        failing = served.wait_logged("archiving state changed", count=2, source="db")[1]
        assert (failing["state"], failing["previous"], failing["level"]) == ("CRITICAL", "OK", "warning")
        assert "archiving fails" in failing["summary"] and stuck in failing["summary"]
        assert 'lifeboat_archiving_state{source="db"} 2.0' in served.get("/metrics")[2]

        c.psql("ALTER SYSTEM RESET archive_command")
        c.psql("SELECT pg_reload_conf()")
        recovered = served.wait_logged("archiving state changed", count=3, source="db")[2]
        assert (recovered["state"], recovered["previous"]) == ("OK", "CRITICAL")
        assert 'lifeboat_archiving_state{source="db"} 0.0' in served.get("/metrics")[2]
        world.wait_archived(stuck)
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
        assert len(served.logged("archiving state changed")) == 3  # checked every second, logged on change only
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
