"""The live progress bar a terminal shows while a backup or restore runs (rich, imported
only when a bar is drawn)."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

from lifeboat.core.progress import Progress
from lifeboat.core.units import format_bytes


@contextlib.contextmanager
def progress_bar(progress: Progress, label: str) -> Iterator[None]:
    """A live progress bar on stderr for ``progress`` while the block runs."""
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
