"""Every command's entry in the audit log (docs/audit.md), written when the command ends.

:class:`Recorded` wraps a command's body (app/cli/main.py ``guarded``): it learns the command's
name the user's way (``restore postgres``) and its parameters from click's context, and when
the command ends — returned, failed with an exit code, interrupted — appends one entry. The
arguments are taken by structure: the parameters the user gave, by name, with the values of
secret parameters dropped and URLs without passwords or option values (core/auditchain.py).

A log that cannot be written does not stop the work: the command prints one warning line on
stderr and exits with its own code. With ``audit: {required: true}`` the log is opened before
the command runs and a log that cannot be written is an error (exit 1) — the command does not
run. ``wal-push`` and ``wal-fetch`` are not recorded: PostgreSQL runs them once per WAL segment.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click

from lifeboat.errors import ExitCode, LifeboatError

if TYPE_CHECKING:
    from lifeboat.app.cli.context import CliContext
    from lifeboat.app.cli.interrupts import Signals
    from lifeboat.app.observability.audit import AuditLog

EXEMPT = frozenset({"wal-push", "wal-fetch"})  # PostgreSQL's per-segment commands
DEFAULT_ANCHOR_EVERY = 100  # as config/model.py AuditConfig


@dataclass(frozen=True)
class AuditSettings:
    path: str
    anchor_every: int
    required: bool


def settings(state: CliContext) -> AuditSettings:
    """Where this invocation's log is, from the configuration (``audit:``) or the state directory.

    The configuration file is read here on its own: one that cannot be read gives the default
    log, and the command itself reports the file's problem as it always has."""
    from lifeboat.app.observability.audit import audit_path

    config = None
    if state.config_path:
        try:
            from lifeboat.config.loader import load_config

            config = load_config(state.config_path)
        except LifeboatError:
            config = None
    path = str(audit_path(config, state.state_directory()))
    if config is None:
        return AuditSettings(path, DEFAULT_ANCHOR_EVERY, False)
    return AuditSettings(path, config.audit.anchor_every, config.audit.required)


def action_of(ctx: click.Context, routed_kinds: Mapping[tuple[str, str], str]) -> str:
    """The command as the user spells it: ``backup``, ``restore postgres``, ``key add``
    (``routed_kinds``: app/cli/main.py's ``ROUTED_KINDS``)."""
    words = ctx.command_path.split()[1:]
    spelled = {routed: f"{verb} {kind}" for (verb, kind), routed in routed_kinds.items()}
    return " ".join(spelled.get(word, word) for word in words)


def _name(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.opts:
        return max(param.opts, key=len).lstrip("-")
    return param.name or ""


def arguments_of(ctx: click.Context, state: CliContext) -> dict[str, Any]:
    """The parameters the user gave (not their defaults), global options first, by name."""
    found: dict[str, Any] = {}
    chain: list[click.Context] = []
    current: click.Context | None = ctx
    while current is not None:
        chain.append(current)
        current = current.parent
    for context in reversed(chain):
        for param in context.command.params:
            if not param.expose_value or param.name is None or param.name not in context.params:
                continue
            source = context.get_parameter_source(param.name)
            if source is None or source is click.core.ParameterSource.DEFAULT:
                continue
            value = context.params[param.name]
            found[_name(param)] = list(value) if isinstance(value, tuple) else value
    if state.repo and "repo" not in found:  # named by LIFEBOAT_REPO
        found["repo"] = state.repo
    return found


def error_line(exc: BaseException | None, signals: Signals | None = None) -> str | None:
    """The one line an entry keeps of the error that ended a command: what the command printed
    (app/cli/main.py ``report``), an operation cancelled by a signal as the interrupt it was."""
    from lifeboat.app.cli.interrupts import Terminated
    from lifeboat.app.cli.output import one_line
    from lifeboat.errors import Cancelled, cli_flag, describe

    if exc is None:
        return None
    behind: BaseException | None = exc
    for _ in range(32):  # an interrupt another error was raised while unwinding from
        if behind is None or isinstance(behind, KeyboardInterrupt):
            break
        behind = behind.__context__
    if isinstance(behind, KeyboardInterrupt):
        exc = behind
    if isinstance(exc, Cancelled) and signals is not None and (interruption := signals.interruption()):
        exc = interruption
    if isinstance(exc, Terminated):
        return "terminated by SIGTERM"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, LifeboatError):
        return one_line(exc.spelled(cli_flag)[0])
    return one_line(f"internal error: {describe(exc)}")


def warn(text: str) -> None:
    """One line on stderr (never stdout, which may carry the --json document), even with --quiet:
    an operation the audit log misses is something its operator must know."""
    from lifeboat.app.cli.output import one_line

    try:
        sys.stderr.write(f"lifeboat: warning: {one_line(text)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class Recorded:
    """``with Recorded(ctx, state):`` around a command body: its audit entry when it ends."""

    def __init__(
        self, ctx: click.Context | None, state: CliContext, routed_kinds: Mapping[tuple[str, str], str]
    ) -> None:
        self.ctx = ctx
        self.state = state
        self.routed_kinds = routed_kinds
        self.log: AuditLog | None = None
        self.settings: AuditSettings | None = None

    def __enter__(self) -> Recorded:
        if self.ctx is None:
            return self
        try:
            self.action = action_of(self.ctx, self.routed_kinds)
            if self.action in EXEMPT:
                return self
            self.arguments = arguments_of(self.ctx, self.state)
            self.settings = settings(self.state)
            from lifeboat.app.observability.audit import AuditLog

            self.log = AuditLog(self.settings.path)
        except Exception as exc:  # noqa: BLE001 - the audit never breaks a command it cannot describe
            warn(f"the audit log is not written: {error_line(exc)}")
            self.log = None
            return self
        if self.settings.required:
            self.log.check_writable()  # raises AuditError: the command does not run
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.log is None:
            return
        if exc is None:
            code, cause = 0, None
        elif isinstance(exc, click.exceptions.Exit):
            code, cause = exc.exit_code, exc.__context__
        elif isinstance(exc, SystemExit):
            code, cause = (exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1), None
        elif isinstance(exc, click.exceptions.Abort | KeyboardInterrupt):
            code, cause = int(ExitCode.INTERRUPTED), exc
        else:
            code, cause = int(ExitCode.ERROR), exc
        with contextlib.suppress(KeyboardInterrupt):  # another Ctrl-C as the command ends: it keeps its own code
            self._record(code, cause if code != 0 else None)

    def _record(self, code: int, cause: BaseException | None) -> None:
        from lifeboat.app.observability.audit import Actor, os_user
        from lifeboat.core.auditchain import status_of

        assert self.log is not None and self.settings is not None
        try:
            self.log.append(
                actor=Actor(os_user()),
                action=self.action,
                arguments=self.arguments,
                result={"status": status_of(code), "exit_code": code, "error": error_line(cause, self.state.signals)},
            )
        except LifeboatError as exc:
            warn(f"the audit log is not written: {exc.message}")
            return
        except Exception as exc:  # noqa: BLE001 - an audit failure never changes the command's exit code
            warn(f"the audit log is not written: {error_line(exc)}")
            return
        repo = self.state.writable_repository
        if code == 0 and repo is not None and self.settings.anchor_every > 0:
            try:
                self.log.anchor_if_due(repo, self.settings.anchor_every)
            except LifeboatError as exc:
                warn(f"the audit log's anchor was not stored in the repository: {exc.message}")
            except Exception as exc:  # noqa: BLE001 - as above
                warn(f"the audit log's anchor was not stored in the repository: {error_line(exc)}")


__all__ = ["EXEMPT", "AuditSettings", "Recorded", "action_of", "arguments_of", "settings"]
