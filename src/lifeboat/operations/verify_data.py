"""Reading back every blob a snapshot needs (``verify --read-data``).

``check --read-data`` reads the whole repository; a verify reads what the snapshots it checks
need — their trees (walked, each read and verified once) and their data blobs, through the
verified loader — so a damaged pack is named with the snapshot and the path it breaks. With a
subset, the packs are sampled as ``check`` samples them (:class:`DataSubset`): a tree is always
read (the walk needs it), a data blob only when its pack is chosen. Blobs shared by several
snapshots are read once per run; damage found is reported for every snapshot that needs it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from lifeboat.core.ids import short
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import NodeType
from lifeboat.errors import IntegrityError, StorageError
from lifeboat.repository.check import DataSubset
from lifeboat.repository.repo import Repository

PROBLEMS_LISTED = 20  # damaged paths named per snapshot; the rest are counted


@dataclass
class DataReading:
    """What reading one snapshot's data found."""

    trees: int = 0
    blobs: int = 0  # data blobs read (or found read earlier in this run)
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    unlisted: int = 0

    def problem(self, message: str) -> None:
        if len(self.problems) < PROBLEMS_LISTED:
            self.problems.append(message)
        else:
            self.unlisted += 1

    def all_problems(self) -> list[str]:
        more = [f"{self.unlisted} more damaged paths (not listed)"] if self.unlisted else []
        return self.problems + more

    def to_json(self) -> dict[str, int]:
        return {"trees": self.trees, "blobs": self.blobs, "bytes": self.bytes}


class DataReader:
    """Reads the blobs of the snapshots of one run, each once."""

    def __init__(
        self,
        repo: Repository,
        subset: DataSubset,
        *,
        rng: random.Random | None = None,
        check: Callable[[], None] = lambda: None,
    ) -> None:
        self.repo = repo
        self.subset = subset
        self.rng = rng or random.Random()  # noqa: S311 - sampling, not crypto
        self.check = check
        self._good: set[bytes] = set()
        self._bad: dict[bytes, str] = {}
        self._chosen_packs: dict[bytes, bool] = {}

    def read(self, snapshot: Snapshot) -> DataReading:
        reading = DataReading()
        # data blob → the first file that needs it, as (its directory's number, its name): one
        # path string per directory, not per file, however many files a snapshot holds
        needed: dict[bytes, tuple[int, str]] = {}
        directories: list[str] = []
        seen_trees: set[bytes] = set()
        stack: list[tuple[str, bytes]] = [("", snapshot.tree)]
        while stack:
            self.check()
            path, tree_id = stack.pop()
            if tree_id in seen_trees:
                continue
            seen_trees.add(tree_id)
            try:
                tree = self.repo.load_tree(tree_id)
            except (IntegrityError, StorageError) as exc:
                reading.problem(f"{_where(path)} cannot be read: {exc}")
                continue
            reading.trees += 1
            directory = len(directories)
            directories.append(path)
            for node in tree.nodes:
                if node.type is NodeType.DIR and node.subtree is not None:
                    stack.append((f"{path}/{node.name}" if path else node.name, node.subtree))
                else:
                    for blob in node.content:
                        needed.setdefault(blob, (directory, node.name))

        def file_of(blob: bytes) -> str:
            directory, name = needed[blob]
            return f"{directories[directory]}/{name}" if directories[directory] else name

        self._choose_packs(needed)
        located = []
        for blob in needed:
            location = self.repo.index().lookup(blob)
            if location is None:
                reading.problem(f"/{file_of(blob)} needs blob {short(blob)}, which is not in the index (missing data)")
            elif self._chosen_packs.get(location.pack_id, False):
                located.append((location.pack_id, location.offset, blob))
        located.sort()
        run: list[tuple[bytes, str]] = []
        current = b""
        for pack_id, _offset, blob in located:
            if run and pack_id != current:
                self._read_run(run, reading)
                run = []
            current = pack_id
            run.append((blob, file_of(blob)))
        if run:
            self._read_run(run, reading)
        return reading

    def _choose_packs(self, needed: dict[bytes, tuple[int, str]]) -> None:
        packs = {loc.pack_id for blob in needed if (loc := self.repo.index().lookup(blob)) is not None}
        new = sorted(p.hex() for p in packs if p not in self._chosen_packs)
        chosen = set(self.subset.select(new, self.rng))
        for pack_hex in new:
            self._chosen_packs[bytes.fromhex(pack_hex)] = pack_hex in chosen

    def _read_run(self, run: list[tuple[bytes, str]], reading: DataReading) -> None:
        """Read the blobs of one pack (in pack order); when a read fails, each blob alone,
        so the damage is pinned to the blobs and paths it breaks."""
        self.check()
        todo = [(blob, path) for blob, path in run if blob not in self._good and blob not in self._bad]
        try:
            for data in self.repo.load_blobs([blob for blob, _ in todo]):
                reading.bytes += len(data)
            self._good.update(blob for blob, _ in todo)
        except (IntegrityError, StorageError):
            for blob, _path in todo:
                try:
                    reading.bytes += len(self.repo.load_blob(blob))
                    self._good.add(blob)
                except (IntegrityError, StorageError) as exc:
                    self._bad[blob] = str(exc)
        for blob, path in run:
            reading.blobs += 1
            if blob in self._bad:
                reading.problem(f"/{path} needs blob {short(blob)}: {self._bad[blob]}")


def _where(path: str) -> str:
    return f"the directory /{path}" if path else "its root tree"


__all__ = ["DataReader", "DataReading"]
