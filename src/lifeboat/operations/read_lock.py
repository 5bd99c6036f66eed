"""The shared lock readers take, so prune cannot remove data while it is read."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from lifeboat.errors import StoragePermissionDenied, option
from lifeboat.repository.repo import Repository


@contextlib.contextmanager
def read_lock(repo: Repository, *, use_lock: bool, wait: float = 0.0, operation: str = "read") -> Iterator[None]:
    """A shared lock, so prune cannot remove data while it is read (the ``no_lock`` option skips
    it). Storage this user may not write refuses the lock: the hint says a reader can go without."""
    if not use_lock:
        yield
        return
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(repo.lock(exclusive=False, operation=operation, wait=wait))
        except StoragePermissionDenied as exc:
            raise StoragePermissionDenied(
                f"cannot take a lock to read: {exc.message}",
                hint=f"{exc.hint}; or, only to read, go without the lock: {option('no_lock')} "
                "(unsafe while prune runs)",
            ) from exc
        yield
