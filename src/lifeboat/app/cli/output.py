"""Everything the CLI prints: results on stdout, notices, progress and errors on stderr.

With ``--json`` the only thing on stdout is one JSON document — the result, or
``{"error": {...}}`` when the command failed before it had one; with ``--quiet`` only
errors are printed. An error is always one line ``lifeboat: error: …`` and a line
``  hint: …`` on stderr (docs/cli.md). Progress bars appear only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import sys
from collections.abc import Iterator
from typing import Any

from lifeboat.core.progress import Notice, Progress, Severity
from lifeboat.errors import ExitCode, LifeboatError, cli_flag, describe, spell_options

INTERNAL_HINT = "rerun with -v for the traceback and report it"


def error_kind(exc: LifeboatError) -> str:
    """The stable ``kind`` of an error in JSON: its class name in snake case without
    ``_error`` (``UsageError`` → ``usage``, ``RepositoryNotFound`` → ``repository_not_found``)."""
    if type(exc) is LifeboatError:
        return "error"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower().removesuffix("_error")


def error_document(exc: LifeboatError) -> dict[str, Any]:
    """The JSON form of an error: ``{"error": {"message", "hint", "exit_code", "kind"}}``."""
    message, hint = exc.spelled(cli_flag)
    return _document(one_line(message), one_line(hint), int(exc.exit_code), error_kind(exc))


def _document(message: str, hint: str, exit_code: int, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "hint": hint, "exit_code": exit_code, "kind": kind}}


def one_line(text: str) -> str:
    """``text`` with its line breaks folded, so a message stays on its one line."""
    return re.sub(r"\s*[\r\n]+\s*", " ", text.strip())


def stream_closed(stream: Any) -> bool:
    """Whether the reader of ``stream`` (a pipe or socket) has gone away: ``lifeboat ls | head``."""
    try:
        fd = stream.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def _write_all(text: str) -> None:
    """Write ``text`` to stdout whole, or raise ``BrokenPipeError``.

    A large ``sys.stdout.write`` into a pipe whose reader leaves drops the rest without an
    error after the kernel's partial write; writing to the descriptor in a loop cannot.
    """
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (an embedding, a test harness)
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    data = memoryview(text.encode(sys.stdout.encoding or "utf-8", errors="surrogateescape"))
    while data:
        data = data[os.write(fd, data) :]


class Output:
    def __init__(self, *, json_mode: bool = False, quiet: bool = False, verbose: int = 0) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.verbose = verbose
        self.emitted = False  # a JSON document is on stdout: never print a second one

    # --- results -------------------------------------------------------------------------
    def emit_json(self, document: Any) -> None:
        """Print the command's one JSON document (a second call is a programming error)."""
        if self.emitted:
            raise RuntimeError("a command prints one JSON document")
        self.emitted = True
        _write_all(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")

    def line(self, text: str = "") -> None:
        """A line of human output (suppressed by --json and --quiet)."""
        if not self.json_mode and not self.quiet:
            sys.stdout.write(text + "\n")

    def raw(self, text: str) -> None:
        """Human output that is the command's product (``ls``, ``diff``): only --json suppresses it."""
        if not self.json_mode:
            sys.stdout.write(text + "\n")

    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        if self.json_mode or self.quiet:
            return
        widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)] if rows else []
        if not rows:
            widths = [len(h) for h in headers]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        sys.stdout.write(fmt.format(*headers).rstrip() + "\n")
        sys.stdout.write("-" * (sum(widths) + 2 * (len(widths) - 1)) + "\n")
        for row in rows:
            sys.stdout.write(fmt.format(*row).rstrip() + "\n")

    # --- stderr ----------------------------------------------------------------------------
    def info(self, text: str) -> None:
        if not self.quiet and not self.json_mode:
            sys.stderr.write(text + "\n")

    def notice(self, notice: Notice) -> None:
        if self.quiet and notice.severity is Severity.WARNING:
            return
        sys.stderr.write(f"{notice.severity.value}: {notice.path}: {spell_options(notice.message, cli_flag)}\n")

    def error(self, exc: LifeboatError, *, exit_code: int | None = None) -> None:
        """Report ``exc``: one line and its hint on stderr and, under ``--json`` when the
        command has not printed its result, the error as the JSON document on stdout."""
        code = int(exc.exit_code) if exit_code is None else exit_code
        message, hint = exc.spelled(cli_flag)
        self._report(one_line(message), one_line(hint), code, error_kind(exc), exc)

    def internal_error(self, exc: BaseException) -> None:
        """Report a failure no check anticipated (a bug): one line, the traceback only with -v."""
        message = one_line(f"internal error: {describe(exc)}")
        self._report(message, INTERNAL_HINT, int(ExitCode.ERROR), "internal", exc)

    def _report(self, message: str, hint: str, exit_code: int, kind: str, exc: BaseException) -> None:
        sys.stderr.write(f"lifeboat: error: {message}\n")
        if hint:
            sys.stderr.write(f"  hint: {hint}\n")
        if self.verbose:
            self._traceback(exc)
        sys.stderr.flush()
        if self.json_mode and not self.emitted:
            self.emit_json(_document(message, hint, exit_code, kind))

    def _traceback(self, exc: BaseException) -> None:
        """The traceback for ``-v``: frames and causes, no message that could quote a secret."""
        from lifeboat.app.cli.tracebacks import format_traceback

        sys.stderr.write(format_traceback(exc))

    # --- progress ---------------------------------------------------------------------------
    @property
    def shows_progress(self) -> bool:
        """Whether :meth:`progress` draws anything (a terminal, not --quiet or --json)."""
        return not self.quiet and not self.json_mode and sys.stderr.isatty()

    @contextlib.contextmanager
    def progress(self, progress: Progress, label: str) -> Iterator[None]:
        """Show a live progress bar for ``progress`` while the block runs (terminals only)."""
        if not self.shows_progress:
            yield
            return
        from lifeboat.app.cli.progressbar import progress_bar

        with progress_bar(progress, label):
            yield
