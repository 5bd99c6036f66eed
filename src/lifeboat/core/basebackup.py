"""The record of a PostgreSQL base backup, kept in its snapshot (``extra["postgres"]``).

It holds everything needed to verify and restore the backup without the source server:
the cluster's identity and version, the timeline, where the backup's WAL starts and
stops, the label, tablespaces and database sizes. Choosing a base backup for a recovery
target is pure logic over these records (:func:`choose_base_backup`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from lifeboat.core.snapshot import Snapshot
from lifeboat.core.wal import DEFAULT_SEGMENT_SIZE, Lsn, TimelineHistory, WalSegment
from lifeboat.errors import IntegrityError

KIND = "postgres"


@dataclass(frozen=True)
class TablespaceRecord:
    oid: int
    name: str
    location: str


@dataclass(frozen=True)
class BaseBackup:
    """One base backup as recorded."""

    method: str  # local | stream
    system_id: str
    version: str
    version_num: int
    timeline: int
    start_lsn: Lsn
    stop_lsn: Lsn
    start_time: datetime
    stop_time: datetime
    label: str
    data_directory: str
    wal_segment_size: int = DEFAULT_SEGMENT_SIZE
    page_size: int = 8192
    data_checksums: bool = False
    tablespaces: tuple[TablespaceRecord, ...] = ()
    databases: tuple[dict[str, Any], ...] = ()
    next_xid: int | None = None  # the next transaction id when the backup stopped
    wal_included: bool = False  # the WAL needed for consistency is inside the backup (stream)
    checksum_errors: tuple[dict[str, Any], ...] = ()
    snapshot_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def start_segment(self) -> WalSegment:
        return WalSegment.containing(self.start_lsn, self.timeline, self.wal_segment_size)

    @property
    def stop_segment(self) -> WalSegment:
        """The last segment recovery needs to reach consistency (PostgreSQL's XLByteToPrevSeg)."""
        return WalSegment.containing(max(self.stop_lsn - 1, self.start_lsn), self.timeline, self.wal_segment_size)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("snapshot_id")
        doc.pop("extra")
        doc["start_lsn"] = str(self.start_lsn)
        doc["stop_lsn"] = str(self.stop_lsn)
        doc["start_time"] = self.start_time.isoformat()
        doc["stop_time"] = self.stop_time.isoformat()
        doc["start_wal"] = self.start_segment.name
        doc["stop_wal"] = self.stop_segment.name
        doc["tablespaces"] = [asdict(t) for t in self.tablespaces]
        doc["databases"] = list(self.databases)
        doc["checksum_errors"] = list(self.checksum_errors)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any], snapshot_id: str = "") -> BaseBackup:
        try:
            return cls(
                method=str(doc["method"]),
                system_id=str(doc["system_id"]),
                version=str(doc["version"]),
                version_num=int(doc["version_num"]),
                timeline=int(doc["timeline"]),
                start_lsn=Lsn.parse(doc["start_lsn"]),
                stop_lsn=Lsn.parse(doc["stop_lsn"]),
                start_time=datetime.fromisoformat(doc["start_time"]),
                stop_time=datetime.fromisoformat(doc["stop_time"]),
                label=str(doc.get("label", "")),
                data_directory=str(doc.get("data_directory", "")),
                wal_segment_size=int(doc.get("wal_segment_size", DEFAULT_SEGMENT_SIZE)),
                page_size=int(doc.get("page_size", 8192)),
                data_checksums=bool(doc.get("data_checksums", False)),
                tablespaces=tuple(
                    TablespaceRecord(int(t["oid"]), str(t["name"]), str(t["location"]))
                    for t in doc.get("tablespaces", [])
                ),
                databases=tuple(dict(d) for d in doc.get("databases", [])),
                next_xid=int(doc["next_xid"]) if doc.get("next_xid") is not None else None,
                wal_included=bool(doc.get("wal_included", False)),
                checksum_errors=tuple(dict(e) for e in doc.get("checksum_errors", [])),
                snapshot_id=snapshot_id,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"snapshot {snapshot_id[:8]}: malformed PostgreSQL backup record: {exc}") from None

    @classmethod
    def of(cls, snapshot: Snapshot) -> BaseBackup:
        doc = snapshot.extra.get("postgres")
        if snapshot.kind != KIND or not isinstance(doc, dict):
            raise IntegrityError(f"snapshot {snapshot.short_id} is not a PostgreSQL base backup")
        return cls.from_json(doc, snapshot.id)


def base_backups(snapshots: Sequence[Snapshot], system_id: str | None = None) -> list[BaseBackup]:
    """The PostgreSQL base backups among ``snapshots`` (of one system, if given), oldest first."""
    found = [BaseBackup.of(s) for s in snapshots if s.kind == KIND and isinstance(s.extra.get("postgres"), dict)]
    if system_id is not None:
        found = [b for b in found if b.system_id == system_id]
    return sorted(found, key=lambda b: (b.stop_time, b.stop_lsn))


@dataclass(frozen=True)
class RestoreTarget:
    """Where recovery stops: one of time, LSN, xid, restore point name, immediate, or latest."""

    time: datetime | None = None
    lsn: Lsn | None = None
    xid: int | None = None
    name: str | None = None
    immediate: bool = False
    inclusive: bool = True

    @property
    def kind(self) -> str:
        for kind in ("time", "lsn", "xid", "name"):
            if getattr(self, kind) is not None:
                return kind
        return "immediate" if self.immediate else "latest"

    def describe(self) -> str:
        kind = self.kind
        if kind in ("latest", "immediate"):
            return kind
        value = getattr(self, kind)
        return f"{kind} {value.isoformat() if isinstance(value, datetime) else value}"


def on_history(backup: BaseBackup, history: TimelineHistory) -> bool:
    """Whether ``history`` holds the backup's own timeline from its start to its consistency
    point (PostgreSQL checks the checkpoint and the minimum recovery point the same way).

    The stop LSN is the end of the backup's last record, so a timeline that branched off
    exactly there — a recovery stopped at ``immediate`` — still holds the backup.
    """
    last = max(backup.stop_lsn - 1, backup.start_lsn)
    return history.contains(backup.timeline, backup.start_lsn) and history.contains(backup.timeline, last)


def choose_base_backup(
    backups: Sequence[BaseBackup], target: RestoreTarget, history: TimelineHistory
) -> BaseBackup | None:
    """The newest backup that can reach ``target`` on ``history``'s path (None if none can).

    A backup can reach a target that lies after it became consistent: its stop time for a
    time target, its stop LSN for an LSN, its next transaction id for an xid. For a named
    restore point the position is unknown, so the newest backup is taken.
    """
    usable = [b for b in backups if on_history(b, history)]
    if target.time is not None:
        usable = [b for b in usable if b.stop_time <= target.time]
    elif target.lsn is not None:
        usable = [b for b in usable if b.stop_lsn <= target.lsn]
    elif target.xid is not None:
        usable = [b for b in usable if b.next_xid is not None and b.next_xid <= target.xid]
    usable.sort(key=lambda b: (b.stop_lsn, b.stop_time))
    return usable[-1] if usable else None
