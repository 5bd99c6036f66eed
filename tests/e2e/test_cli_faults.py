"""Storage faults that cannot be produced for real, met by the real command line: it still
ends with one line, a hint and a documented exit code (docs/cli.md), never a traceback."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lifeboat.errors import ExitCode, LockLost
from lifeboat.repository.lock import HeldLock
from lifeboat.storage.faulty import FaultPlan
from lifeboat.storage.retry import RetryPolicy
from tests.conftest import Cli
from tests.e2e.in_process import InProcessCli
from tests.e2e.test_cli_errors import SMALL_KDF


@pytest.fixture
def in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli_env: dict[str, str]
) -> InProcessCli:
    return InProcessCli(monkeypatch, capsys, cli_env)


@pytest.fixture
def initialised(cli: Cli, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    assert cli("init", *SMALL_KDF).code == 0
    assert cli("backup", str(data)).code == 0
    return data


@pytest.mark.parametrize("json_mode", [False, True])
def test_a_cancelled_error_escaping_the_storage_is_one_line_and_exit_1(
    initialised: Path, in_process: InProcessCli, json_mode: bool
) -> None:
    """``asyncio.CancelledError`` is a ``BaseException``: an async SDK can let it out of a request."""
    in_process.plan = FaultPlan(rate=1.0, kinds=("cancelled",), operations=("list",), objects=("snapshots/",))
    result = in_process(*(["--json"] if json_mode else []), "snapshots")
    assert result.code == ExitCode.ERROR, result
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result
    assert lines[0].startswith("lifeboat: error: internal error: asyncio.exceptions.CancelledError"), result
    assert lines[1] == "  hint: rerun with -v for the traceback and report it"
    if json_mode:
        error = json.loads(result.stdout)["error"]
        assert (error["exit_code"], error["kind"]) == (1, "internal")
    else:
        assert result.stdout == ""


# --- a lock that cannot be refreshed -----------------------------------------------------------------


def _waits_for(marker: Path) -> str:
    """A producer that writes a little, waits for ``marker``, then writes a little more."""
    return (
        "import os, sys, time\n"
        "sys.stdout.buffer.write(os.urandom(1 << 16)); sys.stdout.flush()\n"
        f"while not os.path.exists({str(marker)!r}):\n    time.sleep(0.01)\n"
        "sys.stdout.buffer.write(os.urandom(1 << 16))\n"
    )


@pytest.fixture
def short_lock_times(monkeypatch: pytest.MonkeyPatch) -> list[HeldLock]:
    """Refresh locks every 50 ms, stale after 1 s (lost after 0.95 s); the locks taken are listed."""
    import lifeboat.repository.lock as lock

    monkeypatch.setattr(lock, "REFRESH_EVERY", timedelta(milliseconds=50))
    monkeypatch.setattr(lock, "STALE_AFTER", timedelta(seconds=1))
    held: list[HeldLock] = []

    class Recorded(lock.HeldLock):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            held.append(self)

    monkeypatch.setattr(lock, "HeldLock", Recorded)
    return held


def test_a_lock_the_storage_will_not_refresh_in_time_stops_the_backup_with_14_and_nothing_saved(
    cli: Cli, cli_env: dict[str, str], in_process: InProcessCli, short_lock_times: list[HeldLock], tmp_path: Path
) -> None:
    assert cli("init", *SMALL_KDF).code == 0
    marker = tmp_path / "go-on"
    failures: list[BaseException] = []

    def storage_refuses_lock_refreshes() -> None:
        try:
            deadline = time.monotonic() + 60
            while not short_lock_times:
                assert time.monotonic() < deadline, "the backup took no lock"
                time.sleep(0.01)
            plan = in_process.plan  # from now on every write of a lock object fails (503, retried)
            plan.objects, plan.operations, plan.kinds, plan.rate = ("locks/",), ("put",), ("error",), 1.0
            assert short_lock_times[0].wait_lost(60), "the lock was never given up"
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
        finally:
            marker.touch()  # the producer finishes: the backup reaches its next write

    helper = threading.Thread(target=storage_refuses_lock_refreshes, daemon=True)
    helper.start()
    result = in_process("backup", "command", "--name", "stream", "--", sys.executable, "-c", _waits_for(marker))
    helper.join(60)
    assert result.code == ExitCode.STORAGE, (result, failures)
    assert not failures, failures
    message, hint = result.stderr.splitlines()[-2:]
    assert message.startswith("lifeboat: error: the repository lock "), result
    assert " for backup could not be refreshed for " in message and "503 Service Unavailable" in message
    assert message.endswith("other processes may take it as stale, so the backup stopped rather than go on unprotected")
    assert hint == f"  hint: {LockLost.default_hint}"
    assert "Traceback" not in result.stderr
    assert in_process.plan.injected["error"] >= RetryPolicy().attempts  # each refresh was retried by the policy
    in_process.plan.rate = 0.0
    assert json.loads(cli("--json", "snapshots").stdout) == []
    assert os.listdir(Path(cli_env["LIFEBOAT_REPO"]) / "locks") == []  # released on the way out


def test_a_lock_refresh_that_fails_for_a_while_is_retried_and_the_backup_succeeds(
    cli: Cli,
    in_process: InProcessCli,
    short_lock_times: list[HeldLock],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import lifeboat.repository.lock as lock

    monkeypatch.setattr(lock, "STALE_AFTER", timedelta(minutes=5))  # time enough to recover
    assert cli("init", *SMALL_KDF).code == 0
    marker = tmp_path / "go-on"
    failures: list[BaseException] = []

    def storage_refuses_lock_refreshes_for_a_while() -> None:
        try:
            deadline = time.monotonic() + 60
            while not short_lock_times:
                assert time.monotonic() < deadline, "the backup took no lock"
                time.sleep(0.01)
            held = short_lock_times[0]
            plan = in_process.plan
            plan.objects, plan.operations, plan.kinds, plan.rate = ("locks/",), ("put",), ("error",), 1.0
            while plan.injected.get("error", 0) < 2 * RetryPolicy().attempts:  # two refreshes failed
                assert time.monotonic() < deadline, "no refresh was tried"
                time.sleep(0.01)
            failed_at = held.record
            plan.rate = 0.0
            while held.record is failed_at:  # refreshed again
                assert time.monotonic() < deadline, "the refresh was not retried"
                time.sleep(0.01)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
        finally:
            marker.touch()

    helper = threading.Thread(target=storage_refuses_lock_refreshes_for_a_while, daemon=True)
    helper.start()
    result = in_process(
        "--json", "backup", "command", "--name", "stream", "--", sys.executable, "-c", _waits_for(marker)
    )
    helper.join(60)
    assert not failures, failures
    assert result.code == 0, result
    assert json.loads(result.stdout)["snapshot"]["id"]
    assert not short_lock_times[0].wait_lost(0)
