"""The paths a backup names must be there to read.

A named path (on the command line or in a configured source) that does not exist, or that
this user cannot read, is the source failing: the backup stops before the repository is
touched and no snapshot is saved. (A file that vanishes *during* the walk is only a
warning: the archiver reports it and the snapshot holds the rest.)
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from lifeboat.errors import SourceError

_MISSING_HINT = "check the path for a typo (or the source's paths in the configuration); no snapshot was saved"
_UNREADABLE_HINT = "run the backup as a user who may read it; no snapshot was saved"


def check_targets(paths: Sequence[str], *, source: str = "") -> None:
    """Raise :class:`SourceError` for the first named path that is missing or unreadable."""
    for path in paths:
        _check(path, f"source {source!r}: " if source else "")


def _check(path: str, where: str) -> None:
    absolute = os.path.abspath(path)
    try:
        st = os.lstat(absolute)
    except (FileNotFoundError, NotADirectoryError):
        raise SourceError(f"{where}{path} does not exist", hint=_MISSING_HINT) from None
    except OSError as exc:
        raise SourceError(f"{where}cannot read {path}: {exc.strerror}", hint=_UNREADABLE_HINT) from None
    try:
        if stat.S_ISDIR(st.st_mode):
            with os.scandir(absolute) as listing:
                next(listing, None)
        elif stat.S_ISREG(st.st_mode):
            os.close(os.open(absolute, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC))
    except FileNotFoundError:
        raise SourceError(f"{where}{path} does not exist", hint=_MISSING_HINT) from None
    except OSError as exc:
        raise SourceError(f"{where}cannot read {path}: {exc.strerror}", hint=_UNREADABLE_HINT) from None
