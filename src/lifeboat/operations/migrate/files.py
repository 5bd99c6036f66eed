"""Writing an export's files: counted and hashed as they are written, under a temporary name
until whole, so a failed or interrupted export leaves no half file behind."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lifeboat.errors import RestoreRefused, option


class CountingWriter:
    """A write-only binary stream that counts and hashes (sha256) what passes through it."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self._hash = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._target.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._target.flush()

    def close(self) -> None:  # the target is its owner's to close
        self.flush()
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def check_new_file(path: str, *, force: bool) -> None:
    if os.path.exists(path) and not force:
        raise RestoreRefused(f"{path} exists", hint=f"choose another name, or {option('force')} to replace it")


def check_empty_directory(path: str, *, force: bool) -> None:
    if os.path.isdir(path) and any(os.scandir(path)) and not force:
        raise RestoreRefused(
            f"directory {path} is not empty", hint=f"choose an empty one, or {option('force')} to write into it"
        )
    if os.path.exists(path) and not os.path.isdir(path):
        raise RestoreRefused(f"{path} is not a directory")


@contextmanager
def new_file(path: str | Path) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary sibling renamed into place only when the block succeeds."""
    final = Path(path)
    partial = final.with_name(f".{final.name}.partial")
    try:
        with open(partial, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)


def safe_file_name(text: str) -> str:
    """A table's qualified name as a file name (a slash or NUL would leave the directory)."""
    return text.replace("%", "%25").replace("/", "%2F").replace("\0", "%00")
