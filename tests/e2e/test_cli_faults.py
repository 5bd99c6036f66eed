"""Storage faults that cannot be produced for real, met by the real command line: it still
ends with one line, a hint and a documented exit code (docs/cli.md), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifeboat.errors import ExitCode
from lifeboat.storage.faulty import FaultPlan
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
