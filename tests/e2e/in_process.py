"""Run a ``lifeboat`` command line inside the test process, its storage behind a fault injector.

Some storage faults cannot be produced for real (an SDK letting ``asyncio.CancelledError``
out, a storage that refuses lock refreshes while a backup runs); :class:`FaultyBackend`
produces them, and it can only sit between the command and its storage when the command
runs in this process. It sits where a failing provider would, below the retry layer, so
transient faults are retried by the command's own retry policy. Everything else is the
real command line: argv routing, the error mapper, the output.
"""

from __future__ import annotations

import pytest

from lifeboat.storage.base import Backend
from lifeboat.storage.faulty import FaultPlan, FaultyBackend
from lifeboat.storage.retry import RetryingBackend, RetryPolicy
from tests.conftest import CliResult


class InProcessCli:
    """``lifeboat`` run by :func:`lifeboat.app.cli.main.run`; every provider it opens is wrapped
    in a :class:`FaultyBackend` following :attr:`plan` (no faults until a test sets some)."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str]
    ) -> None:
        import lifeboat.storage.registry as registry

        self.plan = FaultPlan()  # a test changes it (in place, or a new one for later commands)
        self.opened: list[FaultyBackend] = []
        self._capsys = capsys
        for name, value in env.items():
            monkeypatch.setenv(name, value)

        def retrying(provider: Backend, policy: RetryPolicy) -> RetryingBackend:
            faulty = FaultyBackend(provider, self.plan)
            self.opened.append(faulty)
            return RetryingBackend(faulty, policy)

        monkeypatch.setattr(registry, "RetryingBackend", retrying)

    def __call__(self, *args: str) -> CliResult:
        from lifeboat.app.cli.main import route, run

        self._capsys.readouterr()
        code = run(route(list(args)))
        out, err = self._capsys.readouterr()
        return CliResult(code, out, err, out.encode(errors="surrogateescape"))
