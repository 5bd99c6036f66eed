"""One daemon per state directory: ``serve.lock`` there, flock'ed while the daemon runs, so a
second ``lifeboat serve`` on this host cannot take the catalog's running runs of the first for
interrupted ones. The kernel drops the lock when the process ends, however it ends."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from lifeboat.errors import LifeboatError

LOCK_FILE = "serve.lock"


class DaemonLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process's end)."""

    def __init__(self, state_dir: str) -> None:
        self.path = Path(state_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LifeboatError(
                f"cannot create {self.path}: {exc.strerror or exc}",
                hint="the daemon needs a state directory it can write (LIFEBOAT_STATE_DIR)",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise LifeboatError(
                f"another 'lifeboat serve' (pid {holder}) runs with the state directory {self.path.parent}",
                hint="stop it first, or give this one its own LIFEBOAT_STATE_DIR",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
