"""A quick pre-walk that counts files and bytes, so progress can show an ETA."""

from __future__ import annotations

import os
import stat
import threading

from lifeboat.core.patterns import PathFilter
from lifeboat.core.progress import Progress
from lifeboat.sources.files.archiver import normalize_paths


def scan(
    paths: tuple[str, ...], path_filter: PathFilter, progress: Progress, stop: threading.Event, *, one_fs: bool
) -> None:
    """Add the regular files below ``paths`` to ``progress`` totals; stops early on ``stop``."""
    for target in normalize_paths(paths):
        root = "/" + "/".join(target)
        try:
            root_dev = os.lstat(root).st_dev
        except OSError:
            continue
        stack = [target]
        while stack and not stop.is_set():
            parts = stack.pop()
            path = "/" + "/".join(parts)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                if path_filter.selects(parts):
                    progress.scanned(1, st.st_size)
            elif stat.S_ISDIR(st.st_mode) and path_filter.descend(parts) and not (one_fs and st.st_dev != root_dev):
                try:
                    with os.scandir(path) as listing:
                        stack.extend((*parts, entry.name) for entry in listing)
                except OSError:
                    continue
    progress.scan_finished = not stop.is_set()
