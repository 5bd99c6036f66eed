"""Run a ``lifeboat`` command line inside the test process, its storage behind a fault injector.

Some storage faults cannot be produced for real (an SDK letting ``asyncio.CancelledError``
out, a lock refresh failing while a backup runs); :class:`FaultyBackend` produces them, and
it can only sit between the command and its storage when the command runs in this process.
Everything else is the real command line: argv routing, the error mapper, the output.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lifeboat.storage.base import Backend
from lifeboat.storage.faulty import FaultPlan, FaultyBackend
from tests.conftest import CliResult


class InProcessCli:
    """``lifeboat`` run by :func:`lifeboat.app.cli.main.run`; every backend it opens is wrapped
    in a :class:`FaultyBackend` following :attr:`plan` (no faults until a test sets some)."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str]
    ) -> None:
        import lifeboat.storage.registry as registry

        self.plan = FaultPlan()  # replaced by a test to change the faults of later commands
        self.opened: list[FaultyBackend] = []
        self._capsys = capsys
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        real_open: Callable[..., Backend] = registry.open_backend

        def open_backend(url: str, **kwargs: Any) -> Backend:
            faulty = FaultyBackend(real_open(url, **kwargs), self.plan)
            self.opened.append(faulty)
            return faulty

        monkeypatch.setattr(registry, "open_backend", open_backend)

    def __call__(self, *args: str) -> CliResult:
        from lifeboat.app.cli.main import route, run

        self._capsys.readouterr()
        code = run(route(list(args)))
        out, err = self._capsys.readouterr()
        return CliResult(code, out, err, out.encode(errors="surrogateescape"))


def repo_path(cli_env: dict[str, str]) -> Path:
    return Path(cli_env["LIFEBOAT_REPO"])
