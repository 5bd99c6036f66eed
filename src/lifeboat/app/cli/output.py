"""Everything the CLI prints: results on stdout, notices, progress and errors on stderr.

With ``--json`` the only thing on stdout is one JSON document; with ``--quiet`` only
errors are printed. Progress bars appear only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Iterator
from typing import Any

from lifeboat.core.progress import Notice, Progress, Severity
from lifeboat.core.units import format_bytes
from lifeboat.errors import LifeboatError, describe


class Output:
    def __init__(self, *, json_mode: bool = False, quiet: bool = False, verbose: int = 0) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.verbose = verbose

    # --- results -------------------------------------------------------------------------
    def emit_json(self, document: Any) -> None:
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
        sys.stdout.flush()

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
        sys.stderr.write(f"{notice.severity.value}: {notice.path}: {notice.message}\n")

    def error(self, exc: LifeboatError) -> None:
        sys.stderr.write(f"lifeboat: error: {exc.message}\n")
        if exc.hint:
            sys.stderr.write(f"  hint: {exc.hint}\n")
        if self.verbose:
            self._traceback(exc)

    def internal_error(self, exc: BaseException) -> None:
        sys.stderr.write(f"lifeboat: internal error: {describe(exc)}\n")
        sys.stderr.write("  hint: rerun with -v for the traceback and report it\n")
        if self.verbose:
            self._traceback(exc)

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
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        console = Console(file=sys.stderr)
        bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[done]}"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        task = bar.add_task(label, total=None, done="", rate="")
        stop = threading.Event()

        def refresh() -> None:
            while not stop.wait(0.25):
                total = progress.bytes_total if progress.scan_finished else None
                elapsed = max(progress.elapsed(), 1e-6)
                bar.update(
                    task,
                    total=total,
                    completed=progress.bytes_done,
                    done=(
                        f"{progress.files_done} files, {format_bytes(progress.bytes_done)}"
                        + (f" / {format_bytes(progress.bytes_total)}" if progress.scan_finished else "")
                    ),
                    rate=f"{format_bytes(progress.bytes_done / elapsed)}/s",
                )

        with bar:
            thread = threading.Thread(target=refresh, daemon=True)
            thread.start()
            try:
                yield
            finally:
                stop.set()
                thread.join()
