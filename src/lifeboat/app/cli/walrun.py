"""``wal-push`` / ``wal-fetch`` when the spool could not answer: what PostgreSQL sees of the
call (stderr lines, exit status) and the process a background worker runs in. The call and
the worker themselves are :mod:`lifeboat.operations.wal_worker`.

``wal-push`` exits 0 only once the file is durable in the repository. ``wal-fetch``
exits 0 when the file was restored, 1 when it is not in the archive (the end of
recovery), and 126 on any other failure, so that PostgreSQL stops recovery instead of
promoting a database that lacks WAL. Nothing here imports the CLI framework: calls come
from the fast start in :mod:`lifeboat.app.cli.walfast`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from lifeboat.app.cli.walcall import WalInvocation, data_directory, spool_root
from lifeboat.errors import ExitCode, LifeboatError, UsageError, cli_flag, describe

if TYPE_CHECKING:
    from lifeboat.app.cli.context import CliContext
    from lifeboat.config.model import PostgresSourceConfig
    from lifeboat.operations.wal_worker import WalCall
    from lifeboat.repository.repo import Repository

FETCH_FATAL = 126


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _error(exc: LifeboatError, verbose: int) -> None:

    message, hint = exc.spelled(cli_flag)
    _say(f"lifeboat: error: {' '.join(message.split())}")  # one line, whatever a path holds
    if hint:
        _say(f"  hint: {' '.join(hint.split())}")
    if verbose:
        from lifeboat.app.cli.tracebacks import format_traceback

        sys.stderr.write(format_traceback(exc))


def run(inv: WalInvocation) -> int:
    """Run one call; returns the process exit status."""
    fetching = inv.command == "wal-fetch"
    try:
        return _fetch(inv) if fetching else _push(inv)
    except LifeboatError as exc:
        _error(exc, inv.verbose)
        return FETCH_FATAL if fetching else int(exc.exit_code)
    except KeyboardInterrupt:
        _say("lifeboat: interrupted")
        return FETCH_FATAL if fetching else int(ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - PostgreSQL's log gets one line, never a traceback
        _say(f"lifeboat: internal error: {describe(exc)}")
        return FETCH_FATAL if fetching else int(ExitCode.ERROR)


# --- what the call takes from the command line ----------------------------------------------------


def source_config(state: CliContext, source: str | None) -> PostgresSourceConfig | None:
    """The configured PostgreSQL source named ``source`` (its repository becomes the default)."""
    if not source:
        return None
    config = state.config()
    found = config.sources.get(source) if config is not None else None
    if found is None:
        raise UsageError(f"no source {source!r} in the configuration", hint="check --source and --config")
    if found.type != "postgres":
        raise UsageError(f"source {source!r} is a {found.type} source, not a postgres one")
    if found.repository and not state.repo:
        state.repo = found.repository
    return found


class _CommandLineSetup:
    """The source and repository of one call, from its options, environment and configuration
    (:class:`lifeboat.operations.wal_worker.WalSetup`); nothing is read before it is asked for."""

    def __init__(self, inv: WalInvocation) -> None:
        self._inv = inv
        self._state: CliContext | None = None
        self._source: PostgresSourceConfig | None = None
        self._source_read = False

    def _context(self) -> CliContext:
        if self._state is None:
            from lifeboat.app.cli.context import CliContext

            inv = self._inv
            self._state = CliContext.create(
                repo=inv.repo, config_path=inv.config, json=False, quiet=True, verbose=inv.verbose
            )
        return self._state

    def source(self) -> PostgresSourceConfig | None:
        if not self._inv.source:
            return None
        if not self._source_read:
            self._source = source_config(self._context(), self._inv.source)
            self._source_read = True
        return self._source

    def open_repository(self) -> Repository:
        self.source()  # a configured source's repository is the default
        return self._context().open_repository()


def spawn(work: Callable[[], None]) -> None:
    """Run ``work`` in a detached grandchild process (no threads exist yet in this one)."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        work()
    except BaseException:  # noqa: BLE001, S110 - a worker never returns into the caller's code
        pass
    finally:
        os._exit(0)


# --- the two calls ------------------------------------------------------------------------------


def _call(inv: WalInvocation) -> WalCall:
    from lifeboat.operations.wal_worker import WalCall

    return WalCall(
        spool=spool_root(inv),
        data_directory=data_directory(inv.args[-1]),
        sync=inv.sync,
        queue_max=inv.queue_max,
    )


def _push(inv: WalInvocation) -> int:
    from lifeboat.operations.wal_worker import push

    result = push(_call(inv), inv.args[0], _CommandLineSetup(inv), spawn)
    if result.dropped is not None:
        _say("lifeboat: " + result.dropped.alert())
    elif result.outcome == "dropped":
        _say(f"lifeboat: ALERT: {result.name} was DROPPED without archiving (archive queue over its limit)")
    return 0


def _fetch(inv: WalInvocation) -> int:
    from lifeboat.operations.wal_fetch import NOT_FOUND
    from lifeboat.operations.wal_worker import fetch

    name, path = inv.args
    result = fetch(_call(inv), name, path, _CommandLineSetup(inv), spawn)
    if result.note:
        _say(f"lifeboat: warning: {result.note}")
    return 0 if result.found else NOT_FOUND
