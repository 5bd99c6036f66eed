"""Writing one stored file to a path, verified blob by blob, all or nothing: what the restores
of single-file kinds (a Redis RDB, a SQLite database) share."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lifeboat.core.protocols import BlobLoader
from lifeboat.core.tree import Node
from lifeboat.errors import IntegrityError


def write_node(
    loader: BlobLoader, node: Node, path: str, *, mode: int = 0o600, owner: tuple[int, int] | None = None
) -> int:
    """Write ``node``'s verified content to ``path`` through a temporary file beside it, renamed
    into place once whole and synced, so a failed restore leaves no half file behind. ``owner``
    (uid, gid) is applied when running as root. Returns the bytes written."""
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".lifeboat-", dir=directory)
    try:
        written = 0
        with os.fdopen(handle, "wb") as out:
            for data in loader.load_blobs(node.content):
                out.write(data)
                written += len(data)
            out.flush()
            os.fsync(out.fileno())
        if written != node.size:
            raise IntegrityError(f"{node.name}: its stored content has {written} bytes, its entry says {node.size}")
        os.chmod(temporary, mode)
        if owner is not None and os.geteuid() == 0:
            os.chown(temporary, *owner)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return written


def owner_of_directory(path: str) -> tuple[int, int]:
    """The uid and gid of the directory holding ``path`` (a server's files belong to its user)."""
    info = os.stat(os.path.dirname(path) or ".")
    return info.st_uid, info.st_gid
