"""``wal-push`` and ``wal-fetch`` as PostgreSQL runs them (fake WAL files, no server):
exit codes, look-ahead, put-if-absent, the queue limit and the fast start."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat import START_CODE
from lifeboat.app.cli.walcall import parse, spool_root
from lifeboat.sources.postgres.spool import Failure, Spool, WorkerLock
from tests.conftest import Cli
from tests.postgres.fakewal import add_ready, make_pg_wal, mark_done, segment_bytes

SEGS = [f"0000000100000000000000{n:02X}" for n in range(1, 5)]


@pytest.fixture
def pg_wal(tmp_path: Path, cli: Cli) -> Path:
    assert cli("init").code == 0
    wal = make_pg_wal(tmp_path / "data")
    for name in SEGS[:3]:
        add_ready(wal, name)
    return wal


def spool(pg_wal: Path) -> Path:
    return pg_wal.parent / "lifeboat_spool"


def remove_spool(pg_wal: Path) -> None:
    """Remove the spool as an administrator would, while a background worker may still be
    writing into it (so one pass can meet a file created behind it)."""
    deadline = time.monotonic() + 30
    while spool(pg_wal).exists():
        assert time.monotonic() < deadline, f"{spool(pg_wal)} could not be removed"
        shutil.rmtree(spool(pg_wal), ignore_errors=True)


def test_wal_push_archives_the_file_and_pushes_the_next_ready_ones_ahead(pg_wal: Path, cli: Cli) -> None:
    first = cli("wal-push", str(pg_wal / SEGS[0]))
    assert first.code == 0, first
    mark_done(pg_wal, SEGS[0])
    deadline = time.monotonic() + 20  # the background pusher finishes the rest of the queue

    def pushed_ahead() -> bool:
        return all(list(spool(pg_wal).glob(f"*/out/{n}.ok")) for n in SEGS[1:3])

    while not pushed_ahead() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pushed_ahead()
    started = time.monotonic()
    second = cli("wal-push", str(pg_wal / SEGS[1]))
    elapsed = time.monotonic() - started
    assert second.code == 0, second
    assert elapsed < 1.0  # answered from the spool: no key derivation, no upload
    info = json.loads(cli("--json", "pg", "info").stdout)["clusters"][0]
    assert info["wal"]["files"] == 3
    assert info["wal"]["timelines"][0]["ranges"] == [{"first": SEGS[0], "last": SEGS[2], "segments": 3}]


def test_a_call_answered_from_the_spool_imports_no_runpy_cli_or_cryptography(
    pg_wal: Path, cli: Cli, cli_env: dict[str, str]
) -> None:
    assert cli("wal-push", str(pg_wal / SEGS[0])).code == 0
    deadline = time.monotonic() + 20
    while not list(spool(pg_wal).glob(f"*/out/{SEGS[1]}.ok")) and time.monotonic() < deadline:
        time.sleep(0.05)
    # How a server runs Lifeboat (lifeboat_program, server_lifeboat_command): python -c START_CODE
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", START_CODE, "wal-push", str(pg_wal / SEGS[1])],
        env={**os.environ, **cli_env},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.decode().splitlines()
    imported = {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}
    assert "lifeboat.app.cli.walfast" in imported
    assert not imported & {"runpy", "lifeboat.app.cli.main", "lifeboat.app.cli.walrun", "zstandard", "cryptography"}


def _imports(stderr: bytes) -> set[str]:
    return {line.split("|")[-1].strip() for line in stderr.decode().splitlines() if line.startswith("import time:")}


@dataclass
class _RunningPusher:
    """This test in the role of the running pusher (it holds the spool's lock), and a
    ``wal-push`` call waiting for it."""

    spool: Spool
    lock: WorkerLock
    call: subprocess.Popen[bytes]


@contextlib.contextmanager
def _call_under_a_running_pusher(
    pg_wal: Path, cli_env: dict[str, str], name: str, *python_options: str
) -> Iterator[_RunningPusher]:
    """A ``wal-push`` call of ``name`` while a pusher (this test, holding the spool's lock)
    is running and keeps no queue limit; the lock is released and the call ended after."""
    inv = parse(["wal-push", str(pg_wal / name)])
    assert inv is not None
    inv.repo = cli_env["LIFEBOAT_REPO"]
    spool = Spool(spool_root(inv)).ensure()
    spool.note_queue_limit(None)
    lock = spool.push_lock()
    assert lock.try_acquire()
    call = subprocess.Popen(
        [sys.executable, *python_options, "-c", START_CODE, "wal-push", str(pg_wal / name)],
        env={**os.environ, **cli_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(0.5)  # the call is waiting for its file
        assert call.poll() is None
        yield _RunningPusher(spool, lock, call)
    finally:
        lock.release()
        if call.poll() is None:
            call.kill()
        call.communicate()


def test_a_call_waits_for_the_running_pusher_without_loading_the_rest_of_lifeboat(
    pg_wal: Path, cli_env: dict[str, str]
) -> None:
    with _call_under_a_running_pusher(pg_wal, cli_env, SEGS[0], "-X", "importtime") as running:
        running.spool.mark_pushed(SEGS[0])
        _, stderr = running.call.communicate(timeout=60)
    assert running.call.returncode == 0, stderr[-2000:]
    assert not _imports(stderr) & {"lifeboat.app.cli.walrun", "zstandard", "cryptography"}


def test_a_failure_the_running_pusher_records_is_retried_by_a_pusher_that_opens_the_repository_anew(
    pg_wal: Path, cli_env: dict[str, str]
) -> None:
    """A pusher that opened the repository before it went away fails on the write ("no such
    object"): the waiting call does not report that, it retries once with a new pusher, which
    says what is wrong, or — here, the repository being back — archives the file."""
    with _call_under_a_running_pusher(pg_wal, cli_env, SEGS[0]) as running:
        running.spool.mark_push_failed(SEGS[0], Failure(14, f"wal/{SEGS[0]}: no such object"))
        running.lock.release()  # the failed pusher exits
        _, stderr = running.call.communicate(timeout=120)
    assert running.call.returncode == 0, stderr[-2000:]
    assert b"no such object" not in stderr
    assert running.spool.push_done(SEGS[0]) is not None and running.spool.push_failure(SEGS[0]) is None


def test_pushing_identical_content_again_succeeds_and_different_content_fails_loudly(pg_wal: Path, cli: Cli) -> None:
    assert cli("wal-push", "--sync", str(pg_wal / SEGS[0])).code == 0
    again = cli("wal-push", str(pg_wal / SEGS[0]))
    assert again.code == 0, again
    # Losing the spool while its background pusher still runs loses nothing but time: the stale
    # pusher stops instead of writing statuses into the new spool, and the conflict is found.
    remove_spool(pg_wal)
    (pg_wal / SEGS[0]).write_bytes(segment_bytes(SEGS[0], fill=b"rewritten history"))
    conflict = cli("wal-push", str(pg_wal / SEGS[0]))
    assert conflict.code == 13
    assert f"WAL file {SEGS[0]} is already archived with different content" in conflict.stderr
    assert "hint:" in conflict.stderr
    sync = cli("wal-push", "--sync", str(pg_wal / SEGS[0]))
    assert sync.code == 13


def test_an_unreachable_repository_fails_the_push(pg_wal: Path, cli: Cli, tmp_path: Path) -> None:
    gone = cli("wal-push", str(pg_wal / SEGS[0]), env={"LIFEBOAT_REPO": str(tmp_path / "nowhere")})
    assert gone.code == 10
    assert "no Lifeboat repository at" in gone.stderr
    wrong = cli("wal-push", str(pg_wal / SEGS[0]), env={"LIFEBOAT_PASSWORD": "wrong", "LIFEBOAT_PASSWORD_FILE": ""})
    assert wrong.code == 12
    assert "wrong" not in wrong.stderr.replace("wrong passphrase", "")


def test_the_queue_limit_drops_wal_with_an_alert(pg_wal: Path, cli: Cli, tmp_path: Path) -> None:
    env = {"LIFEBOAT_REPO": str(tmp_path / "unreachable")}
    dropped = cli("wal-push", "--queue-max", "40MiB", str(pg_wal / SEGS[0]), env=env)
    assert dropped.code == 0, dropped
    assert "ALERT" in dropped.stderr and "DROPPED 3 WAL files" in dropped.stderr
    assert SEGS[0] in dropped.stderr and SEGS[2] in dropped.stderr
    mark_done(pg_wal, SEGS[0])
    later = cli("wal-push", "--queue-max", "40MiB", str(pg_wal / SEGS[1]), env=env)
    assert later.code == 0
    assert f"ALERT: {SEGS[1]} was DROPPED" in later.stderr
    info = json.loads(cli("--json", "pg", "info").stdout)
    assert info["clusters"] == []


def test_wal_fetch_restores_says_not_found_at_the_end_and_names_a_gap(pg_wal: Path, cli: Cli) -> None:
    for name in (SEGS[0], SEGS[2]):
        assert cli("wal-push", "--sync", str(pg_wal / name)).code == 0
    target = pg_wal / "RECOVERYXLOG"
    found = cli("wal-fetch", SEGS[0], str(target))
    assert found.code == 0, found
    assert target.read_bytes() == segment_bytes(SEGS[0])
    end = cli("wal-fetch", SEGS[3], str(target))
    assert end.code == 1
    history = cli("wal-fetch", "00000002.history", str(pg_wal / "RECOVERYHISTORY"))
    assert history.code == 1
    gap = cli("wal-fetch", SEGS[1], str(target))
    assert gap.code == 1
    assert f"warning: WAL segment {SEGS[1]} is missing" in gap.stderr
    sync = cli("wal-fetch", "--sync", SEGS[2], str(target))
    assert sync.code == 0
    assert target.read_bytes() == segment_bytes(SEGS[2])


def test_wal_fetch_failures_stop_recovery(pg_wal: Path, cli: Cli) -> None:
    assert cli("wal-push", "--sync", str(pg_wal / SEGS[0])).code == 0
    wrong = cli(
        "wal-fetch",
        SEGS[0],
        str(pg_wal / "RECOVERYXLOG"),
        env={"LIFEBOAT_PASSWORD": "wrong", "LIFEBOAT_PASSWORD_FILE": ""},
    )
    assert wrong.code == 126  # above 125: PostgreSQL aborts recovery instead of ending it early
    assert "wrong passphrase" in wrong.stderr
    assert not (pg_wal / "RECOVERYXLOG").exists()


def test_wal_commands_refuse_calls_that_are_not_from_postgresql(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").code == 0
    missing = cli("wal-push", str(tmp_path / "pg_wal" / SEGS[0]))
    assert missing.code == 2
    assert "does not exist" in missing.stderr
    os.makedirs(tmp_path / "x")
    bad = cli("wal-fetch", "../../etc/passwd", str(tmp_path / "x" / "out"))
    assert bad.code == 126
    assert cli("wal-push", "--help").code == 0
