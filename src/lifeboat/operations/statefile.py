"""Files in the local state directory (caches of repository metadata and records): written
whole and private, read back as untrusted.

A cache file is written to a temporary file beside it (mode 0600, in a 0700 directory) and
renamed into place, so a reader never sees half a file and two writers at once lose nothing
the next listing would not fetch again. A state directory that cannot be written only means
there is no cache: the repository stays the truth.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_state_file(path: Path, doc: Any) -> bool:
    """Write ``doc`` as JSON to ``path``, whole or not at all; False when it could not be written."""
    return write_state_bytes(path, json.dumps(doc, separators=(",", ":")).encode("utf-8"))


def write_state_bytes(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path``, whole or not at all; False when it could not be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError:
        return False
    return True


def read_state_file(path: Path, version: int) -> dict[str, Any] | None:
    """The JSON document at ``path`` if it is an object of ``version``; None when it is missing,
    unreadable, not JSON or another version (the caller treats that as an empty cache)."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("version") != version:
        return None
    return doc


__all__ = ["read_state_file", "write_state_bytes", "write_state_file"]
