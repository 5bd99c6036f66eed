"""A cluster's archived WAL files as one listing of ``wal/<system id>/`` gives them.

Kept apart from :mod:`lifeboat.repository.wal` so that the repository (``Repository.wal_catalog``)
can name the listing without importing the archive that imports it.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field

from lifeboat.core.wal import WalFileName, parse_wal_file_name


@dataclass(frozen=True)
class ArchivedFile:
    """One archived WAL file as the storage lists it."""

    name: str
    stored_bytes: int
    mtime: float
    parsed: WalFileName


@dataclass
class WalListing:
    """One cluster's archived files as one listing gives them, compactly: the paths below
    ``wal/<system id>/`` (``<timeline>/<file name>``) sorted, with their stored sizes and
    times in parallel arrays. A hundred thousand files cost a list of strings and two arrays,
    not a hundred thousand objects; :meth:`files` gives the objects when they are wanted."""

    paths: list[str] = field(default_factory=list)
    sizes: array[int] = field(default_factory=lambda: array("Q"))
    mtimes: array[float] = field(default_factory=lambda: array("d"))

    @classmethod
    def of(cls, infos: Iterator[tuple[str, int, float]]) -> WalListing:
        """From (path below the system's directory, size, time) triples of archived files
        (:func:`archived_path` already accepted each path)."""
        rows = sorted(infos)
        return cls([r[0] for r in rows], array("Q", [r[1] for r in rows]), array("d", [r[2] for r in rows]))

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def names(self) -> list[str]:
        """The file names, in name order (the timeline directory is the name's first 8 digits)."""
        return [p[9:] for p in self.paths]

    @property
    def stored_bytes(self) -> int:
        return sum(self.sizes)

    def mtime(self, name: str) -> float | None:
        """When archived file ``name`` reached the repository (None: not listed)."""
        path = f"{name[:8]}/{name}"
        i = bisect_left(self.paths, path)
        return self.mtimes[i] if i < len(self.paths) and self.paths[i] == path else None

    def files(self) -> Iterator[ArchivedFile]:
        """Every file as an :class:`ArchivedFile` (parsed: the slow form, for few files)."""
        for path, size, mtime in zip(self.paths, self.sizes, self.mtimes, strict=True):
            name = path[9:]
            yield ArchivedFile(name, size, mtime, parse_wal_file_name(name))


# A segment in its timeline's directory, the common case of a hundred thousand, in one match:
# the directory is the name's first 8 digits and not timeline 0.
_SEGMENT_PATH = re.compile(r"(?!00000000)([0-9A-F]{8})/\1[0-9A-F]{16}")


def archived_path(path: str) -> bool:
    """Whether ``path`` (below ``wal/<system id>/``) is where an archived file of its name belongs:
    ``<timeline>/<WAL file name>``, the directory being the name's first 8 hex digits."""
    if _SEGMENT_PATH.fullmatch(path):
        return True
    directory, slash, name = path.partition("/")
    if not slash or directory != name[:8] or "/" in name:
        return False
    try:
        parse_wal_file_name(name)
    except ValueError:
        return False
    return True
