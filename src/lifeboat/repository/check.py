"""``check``: prove the repository is whole, and name precisely what is not.

Structure: every index file decodes, every indexed pack exists with the indexed size,
every snapshot decodes and every tree and data blob it needs is indexed and readable,
and the archived WAL holds what base backups and timelines need
(:mod:`lifeboat.repository.walcheck`). With ``read_data`` (all packs or a subset), every
pack is downloaded, its name checked against its hash, its trailer compared with the
index and every blob decrypted and verified against its id; every archived WAL file (or
the subset's share) is read back and verified too. Problems are collected, never raised,
so one run reports all. A problem is damage, or — ``storage`` — something the storage would
not give (a permission, an I/O error): damage decides the exit code (13) over storage
faults (14), so a refused read is never reported as damaged data.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from lifeboat.core.basebackup import KIND as BASE_BACKUP_KIND
from lifeboat.core.basebackup import BaseBackup
from lifeboat.core.ids import short
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.treewalk import TreeShapes
from lifeboat.errors import IntegrityError, LifeboatError, ObjectNotFound, StorageError
from lifeboat.repository import layout
from lifeboat.repository.compression import decompress
from lifeboat.repository.crypto.aead import PackCipher
from lifeboat.repository.index import BlobIndex
from lifeboat.repository.pack import parse_header, read_pack_entries
from lifeboat.repository.reachability import mark
from lifeboat.repository.repo import Repository, object_hash
from lifeboat.repository.walcheck import WalChecker


class ProblemKind(StrEnum):
    INDEX = "index"
    PACK = "pack"
    SNAPSHOT = "snapshot"
    BUNDLE = "bundle"
    DATA = "data"
    KEY = "key"
    WAL = "wal"


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    object: str
    message: str
    details: dict[str, str | int] = field(default_factory=dict)  # e.g. a WAL file's system, timeline, name
    storage: bool = False  # the storage would not give it: the data may be whole

    def to_json(self) -> dict[str, str | int]:
        cause = "storage" if self.storage else "damage"
        return {"kind": self.kind.value, "object": self.object, "message": self.message, "cause": cause, **self.details}


@dataclass
class CheckResult:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    snapshots: int = 0
    packs: int = 0
    packs_read: int = 0
    blobs: int = 0
    bytes_read: int = 0
    wal_files: int = 0
    wal_files_read: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def damage(self) -> list[Problem]:
        """The errors that are damaged, missing or hostile data."""
        return [p for p in self.errors if not p.storage]

    @property
    def unreadable(self) -> list[Problem]:
        """The errors that are objects the storage would not give."""
        return [p for p in self.errors if p.storage]

    @property
    def wal_damaged(self) -> bool:
        return any(p.kind is ProblemKind.WAL for p in self.damage)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "snapshots": self.snapshots,
            "packs": self.packs,
            "packs_read": self.packs_read,
            "blobs": self.blobs,
            "bytes_read": self.bytes_read,
            "wal_files": self.wal_files,
            "wal_files_read": self.wal_files_read,
            "errors": [p.to_json() for p in self.errors],
            "warnings": [p.to_json() for p in self.warnings],
        }


def check_hint(result: CheckResult) -> str:
    """What helps with the problems ``result`` found (damaged WAL needs other remedies than packs)."""
    wal = (
        "for damaged or missing WAL: restore from a replica repository made by 'lifeboat copy', or recover "
        "to a target before it"
    )
    if all(p.kind is ProblemKind.WAL for p in result.damage):
        return wal
    return f"{IntegrityError.default_hint}; {wal}"


def check_failure(result: CheckResult) -> LifeboatError | None:
    """The error a check with problems ends with: damage (13) when any was found, else the
    storage faults (14) that kept parts from being checked; None when all is well."""
    damage, unreadable = result.damage, result.unreadable
    also = f"; {len(unreadable)} objects could not be read" if unreadable else ""
    if damage:
        summary = f"the repository has {len(damage)} problems{also} (listed above)"
        return IntegrityError(summary, hint=check_hint(result) if result.wal_damaged else None)
    if unreadable:
        return StorageError(
            f"{len(unreadable)} objects could not be read, so the repository was not fully checked (listed above); "
            "nothing that was read is damaged",
            hint="check that the storage is reachable and that this user may read every file of the repository, "
            "then run check again",
        )
    return None


@dataclass(frozen=True)
class DataSubset:
    """Which packs ``--read-data-subset`` reads: a fraction, or slice n of m."""

    fraction: float = 1.0
    part: tuple[int, int] | None = None

    @classmethod
    def parse(cls, text: str) -> DataSubset:
        text = text.strip()
        try:
            if text.endswith("%"):
                fraction = float(text[:-1]) / 100
                if not 0 < fraction <= 1:
                    raise ValueError
                return cls(fraction=fraction)
            if "/" in text:
                n, m = (int(x) for x in text.split("/", 1))
                if not 1 <= n <= m:
                    raise ValueError
                return cls(part=(n, m))
        except ValueError:
            pass
        raise ValueError(f"invalid subset {text!r}: use a percentage like 10% or a slice like 2/5")

    def select(self, pack_ids: list[str], rng: random.Random) -> list[str]:
        ordered = sorted(pack_ids)
        if self.part is not None:
            n, m = self.part
            return [p for p in ordered if int(p[:8], 16) % m == n - 1]
        if self.fraction >= 1:
            return ordered
        count = max(1, round(len(ordered) * self.fraction)) if ordered else 0
        return sorted(rng.sample(ordered, count))


ProgressCallback = Callable[[str], None]


class Checker:
    def __init__(self, repo: Repository, *, progress: ProgressCallback | None = None, workers: int = 2) -> None:
        self.repo = repo
        self.result = CheckResult()
        self._progress = progress or (lambda _msg: None)
        self._workers = workers
        self._damaged_blobs: set[bytes] = set()
        self._unreadable_blobs: set[bytes] = set()
        self._unavailable_packs: set[bytes] = set()
        self._index = BlobIndex()
        self._snapshots: list[Snapshot] = []

    def _error(self, kind: ProblemKind, obj: str, message: str, *, storage: bool = False) -> None:
        self.result.errors.append(Problem(kind, obj, message, storage=storage))

    def _warn(self, kind: ProblemKind, obj: str, message: str) -> None:
        self.result.warnings.append(Problem(kind, obj, message))

    def run(self, *, read_data: DataSubset | None = None, rng: random.Random | None = None) -> CheckResult:
        index = self._index = self._load_index()
        self.repo.use_index(index)
        stored = self._check_packs(index)
        self._unavailable_packs = set(index.pack_ids) - stored
        if read_data is not None:
            chosen = read_data.select([p.hex() for p in index.pack_ids if p in stored], rng or random.Random())  # noqa: S311 - sampling, not crypto
            self._read_packs(index, chosen)
        self._check_snapshots()
        self._check_bundles()
        self._check_wal(read_data, rng)
        return self.result

    # --- index ------------------------------------------------------------------------------
    def _load_index(self) -> BlobIndex:
        self._progress("loading index")
        files = {}
        for index_id in self.repo.index_ids():
            try:
                files[index_id] = self.repo.load_index_file(index_id)
            except IntegrityError as exc:
                self._error(ProblemKind.INDEX, f"index/{index_id}", f"unreadable: {exc}")
            except StorageError as exc:
                self._error(ProblemKind.INDEX, f"index/{index_id}", f"cannot be read: {exc}", storage=True)
        superseded = {s.hex() for f in files.values() for s in f.supersedes}
        index = BlobIndex()
        index.bulk_load(f for i, f in files.items() if i not in superseded)
        self.result.blobs = len(index)
        return index

    # --- packs --------------------------------------------------------------------------------
    def _check_packs(self, index: BlobIndex) -> set[bytes]:
        self._progress("listing packs")
        listed = {}
        for info in self.repo.backend.list(layout.DATA):
            name_id = layout.pack_id_of(info.name)
            try:
                listed[bytes.fromhex(name_id)] = info.size
            except ValueError:
                self._warn(ProblemKind.PACK, info.name, "unexpected object in data/")
        self.result.packs = len(listed)
        present: set[bytes] = set()
        for pack_id in index.pack_ids:
            size = listed.get(pack_id)
            if size is None:
                self._error(ProblemKind.PACK, f"pack {short(pack_id)}", "is missing (the index lists it)")
            elif size != index.pack_size(pack_id):
                self._error(
                    ProblemKind.PACK,
                    f"pack {short(pack_id)}",
                    f"has {size} bytes, the index says {index.pack_size(pack_id)} (truncated or damaged)",
                )
            else:
                present.add(pack_id)
        for pack_id in listed.keys() - set(index.pack_ids):
            self._warn(
                ProblemKind.PACK,
                f"pack {short(pack_id)}",
                "is not in the index (left by an interrupted backup, or the index is damaged: "
                "'lifeboat repair index' adds it back; 'lifeboat prune' removes it if unused)",
            )
        return present

    def _read_packs(self, index: BlobIndex, pack_hexes: list[str]) -> None:
        self._progress(f"reading {len(pack_hexes)} packs")
        by_pack: dict[bytes, list[tuple[bytes, int, int, int, int]]] = {}
        for blob_id, loc in index.items():
            by_pack.setdefault(loc.pack_id, []).append((blob_id, loc.type, loc.offset, loc.length, loc.raw_length))
        with ThreadPoolExecutor(max_workers=max(1, self._workers)) as pool:
            for pack_hex, problems, damaged, size in pool.map(
                lambda h: self._read_pack(h, by_pack.get(bytes.fromhex(h), [])), pack_hexes
            ):
                if isinstance(problems, StorageError):
                    self._unreadable_blobs |= damaged
                    self._error(ProblemKind.DATA, f"pack {pack_hex[:8]}", f"cannot be read: {problems}", storage=True)
                    continue
                self.result.packs_read += 1
                self.result.bytes_read += size
                self._damaged_blobs |= damaged
                for message in problems:
                    self._error(ProblemKind.DATA, f"pack {pack_hex[:8]}", message)

    def _read_pack(
        self, pack_hex: str, expected: list[tuple[bytes, int, int, int, int]]
    ) -> tuple[str, list[str] | StorageError, set[bytes], int]:
        """The pack's problems and damaged blobs; the storage's error (and every blob) when it
        would not give the pack."""
        problems: list[str] = []
        all_blobs = {e[0] for e in expected}
        try:
            data = self.repo.backend.get(layout.pack_name(pack_hex))
        except StorageError as exc:
            return pack_hex, exc, all_blobs, 0
        if object_hash(data) != pack_hex:
            problems.append("content does not match its name (damaged)")
        try:
            entries = {e.id: e for e in read_pack_entries(data, self.repo.encryption_root)}
        except IntegrityError as exc:
            entries = {}
            problems.append(f"trailer unreadable: {exc}")
        damaged: set[bytes] = set()
        try:
            cipher: PackCipher | None = parse_header(data, self.repo.encryption_root)
        except IntegrityError as exc:
            cipher = None
            problems.append(f"header unreadable: {exc}")
        for blob_id, blob_type, offset, length, raw_length in expected:
            entry = entries.get(blob_id)
            if entries and (entry is None or (entry.offset, entry.length) != (offset, length)):
                problems.append(f"blob {short(blob_id)}: the pack's trailer disagrees with the index")
            try:
                if cipher is None or offset + length > len(data):
                    raise IntegrityError("pack is truncated")
                payload = cipher.open_blob(offset, blob_type, blob_id, data[offset : offset + length])
                plain = decompress(payload, raw_length)
                if self.repo.blob_id(plain) != blob_id:
                    raise IntegrityError("content does not match its id")
            except IntegrityError as exc:
                damaged.add(blob_id)
                problems.append(f"blob {short(blob_id)} is damaged: {exc}")
        return pack_hex, problems, damaged, len(data)

    def _is_damaged(self, blob_id: bytes) -> bool:
        if blob_id in self._damaged_blobs:
            return True
        location = self._index.lookup(blob_id)
        return location is not None and location.pack_id in self._unavailable_packs

    # --- snapshots -----------------------------------------------------------------------------
    def _check_snapshots(self) -> None:
        self._progress("checking snapshots")
        snapshots: list[Snapshot] = []
        for snapshot_id in self.repo.snapshot_ids():
            try:
                snapshots.append(self.repo.load_snapshot(snapshot_id))
            except StorageError as exc:
                self._error(ProblemKind.SNAPSHOT, f"snapshot {snapshot_id[:8]}", f"cannot be read: {exc}", storage=True)
            except LifeboatError as exc:
                self._error(ProblemKind.SNAPSHOT, f"snapshot {snapshot_id[:8]}", f"unreadable: {exc}")
        self.result.snapshots = len(snapshots)
        self._snapshots = snapshots
        shapes = TreeShapes(lambda _tree_id: None)  # every readable tree is recorded as it is marked
        reach = mark(
            self.repo,
            snapshots,
            damaged=self._is_damaged,
            unreadable=self._unreadable_blobs.__contains__,
            tolerate_storage_errors=True,
            on_tree=shapes.record,
        )
        for missing in reach.missing:
            self._error(
                ProblemKind.SNAPSHOT, f"snapshot {missing.snapshot[:8]}", missing.what(), storage=missing.storage
            )
        for snapshot_id, more in reach.unlisted.items():
            self._error(
                ProblemKind.SNAPSHOT,
                f"snapshot {snapshot_id[:8]}",
                f"needs {more} more blobs that are missing or damaged (not listed)",
            )
        for snapshot in snapshots:  # the expansion bound (docs/format.md §9)
            size = shapes.exceeds(snapshot.tree)
            if size is not None:
                self._error(
                    ProblemKind.SNAPSHOT,
                    f"snapshot {snapshot.short_id}",
                    f"{size.describe()}: restore, ls and diff refuse it (crafted or damaged)",
                )

    # --- archived WAL ----------------------------------------------------------------------------
    def _check_bundles(self) -> None:
        """Every bundle opens, and its copy of each listed snapshot is that snapshot's object
        (readers pass over what fails; a damaged bundle only costs them requests)."""
        listed = set(self.repo.snapshot_ids())
        again = "'lifeboat prune' writes a new bundle and removes this one"
        for bundle_id in self.repo.bundle_ids():
            what = f"bundle {bundle_id[:8]}"
            try:
                bundle = self.repo.load_bundle(bundle_id)
            except ObjectNotFound:
                continue  # removed by a prune since it was listed
            except StorageError as exc:
                self._error(ProblemKind.BUNDLE, what, f"cannot be read: {exc}", storage=True)
                continue
            except LifeboatError as exc:
                self._error(ProblemKind.BUNDLE, what, f"unreadable: {exc} ({again})")
                continue
            for snapshot_id in sorted(listed.intersection(bundle.objects)):
                if object_hash(bundle.objects[snapshot_id]) != snapshot_id:
                    self._error(
                        ProblemKind.BUNDLE, what, f"holds a damaged copy of snapshot {snapshot_id[:8]} ({again})"
                    )

    def _check_wal(self, read_data: DataSubset | None, rng: random.Random | None) -> None:
        backups: list[BaseBackup] = []
        for snapshot in self._snapshots:
            if snapshot.kind != BASE_BACKUP_KIND:
                continue
            try:
                backups.append(BaseBackup.of(snapshot))
            except IntegrityError as exc:
                self._error(ProblemKind.SNAPSHOT, f"snapshot {snapshot.short_id}", str(exc))
        checker = WalChecker(self.repo, backups, workers=self._workers, progress=self._progress)
        wal = checker.run(read_subset=read_data.select if read_data is not None else None, rng=rng)
        self.result.wal_files += wal.files
        self.result.wal_files_read += wal.files_read
        self.result.bytes_read += wal.bytes_read
        for issue in wal.issues:
            problem = Problem(ProblemKind.WAL, issue.object, issue.message, issue.details, storage=issue.storage)
            (self.result.errors if issue.error else self.result.warnings).append(problem)
