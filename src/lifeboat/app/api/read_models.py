"""The response documents of the read resources (docs/api.md, "Resources"), as pydantic
models so the OpenAPI schema says exactly what each answer holds.

Times are ISO 8601 in UTC; durations and ages in seconds; sizes in bytes. Documents that
mirror a command's ``--json`` output (a snapshot, ``health --json``, ``pg info --json``)
keep its field names. Free-form parts (a snapshot's ``summary``, a check's ``metrics``) are
objects whose members depend on the kind of source.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Color = Literal["green", "amber", "red"]
HealthState = Literal["OK", "WARNING", "CRITICAL", "UNKNOWN"]


class _Open(BaseModel):
    """A document that may carry more members than listed (a newer version's)."""

    model_config = ConfigDict(extra="allow")


# --- health ----------------------------------------------------------------------------------
class CheckOut(BaseModel):
    """One check of ``lifeboat health``."""

    subject: str = Field(description="The source, or 'repository'")
    check: str = Field(description="rpo, wal, archiver, ready, spool, cluster, system, verify, drill, reachable, …")
    state: HealthState
    summary: str
    hint: str = Field(description="What to do when it is not OK (empty when OK)")
    metrics: dict[str, float | None] = Field(default_factory=dict)


class RepositoryHealthOut(BaseModel):
    location: str
    reachable: bool
    state: HealthState
    snapshots: int
    free_bytes: int | None
    size_bytes: int | None
    packs: int | None
    data_bytes: int | None
    locks: int
    stale_locks: list[str]
    checks: list[CheckOut]


class SourceHealthOut(BaseModel):
    source: str
    kind: str
    configured: bool
    state: HealthState
    rpo_seconds: float | None
    newest_restorable: datetime | None
    oldest_restorable: datetime | None
    snapshots: int
    wal: dict[str, Any] | None = Field(description="PostgreSQL: the window on the repository's WAL")
    cluster: dict[str, Any] | None = Field(description="PostgreSQL: the live cluster, when it was asked")
    checks: list[CheckOut]


class HealthOut(BaseModel):
    """The document of ``lifeboat health --json``."""

    state: HealthState
    exit_code: int = Field(description="Nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")
    headline: str
    time: datetime = Field(description="When the checks ran")
    repository: RepositoryHealthOut
    sources: list[SourceHealthOut]
    cache: dict[str, Any]
    seconds: float


# --- overview --------------------------------------------------------------------------------
class RecordedOut(BaseModel):
    """The newest recorded verify or drill of a source."""

    time: datetime
    ok: bool
    age_seconds: float
    reason: str = Field(description="Why it failed (empty when it passed)")
    rto_seconds: float | None = None
    rto_objective_seconds: float | None = None
    achieved_rpo_seconds: float | None = None
    rpo_objective_seconds: float | None = None


class BackupOut(BaseModel):
    """The newest snapshot of a source."""

    snapshot: str
    time: datetime
    age_seconds: float
    duration_seconds: float | None
    bytes_total: int | None = Field(description="What the source held")
    bytes_stored: int | None = Field(description="What the backup added to the repository")


class JobOut(BaseModel):
    """A scheduled job as the daemon knows it."""

    job: str
    kind: str
    target: str
    running: bool
    last_run: datetime | None
    last_status: str | None
    last_success: datetime | None
    last_duration_seconds: float | None
    runs_total: int
    failures_total: int


class OverviewSource(BaseModel):
    """One source on the first page: can it be restored, to when, and how fast."""

    name: str
    kind: str
    configured: bool
    state: Color = Field(description="green: within its objectives; amber: look soon; red: act now")
    health: HealthState
    reasons: list[str] = Field(description="The checks that make it amber or red")
    actions: list[str] = Field(description="What to do, one line per check that is not OK")
    newest_restorable: datetime | None
    age_seconds: float | None = Field(description="Age of the newest restorable point")
    rpo_seconds: float | None
    rto_seconds: float | None = Field(description="The configured objective")
    oldest_restorable: datetime | None
    snapshots: int
    last_backup: BackupOut | None
    last_verify: RecordedOut | None
    last_drill: RecordedOut | None
    jobs: list[JobOut]


class OverviewRepository(BaseModel):
    location: str
    reachable: bool
    state: Color
    health: HealthState
    snapshots: int
    data_bytes: int | None
    free_bytes: int | None
    size_bytes: int | None
    reasons: list[str]
    actions: list[str]


class Overview(BaseModel):
    """Everything the dashboard's first page shows, in one answer."""

    state: Color
    health: HealthState
    headline: str
    checked: datetime = Field(description="When the health checks behind it ran")
    age_seconds: float = Field(description="How old those checks are")
    repository: OverviewRepository
    sources: list[OverviewSource]
    running: list[str] = Field(description="The jobs running now")


# --- sources ---------------------------------------------------------------------------------
class SourceOut(BaseModel):
    name: str
    kind: str
    configured: bool
    repository: str | None = Field(description="The repository it goes to (null: the default)")
    state: Color
    health: HealthState
    rpo_seconds: float | None
    rto_seconds: float | None
    newest_restorable: datetime | None
    oldest_restorable: datetime | None
    snapshots: int
    tags: list[str]
    retention: str | None = Field(description="The retention policy in words")


class SourceDetail(SourceOut):
    checks: list[CheckOut]
    wal: dict[str, Any] | None
    cluster: dict[str, Any] | None
    last_backup: BackupOut | None
    last_verify: RecordedOut | None
    last_drill: RecordedOut | None
    jobs: list[JobOut]


class SourceList(BaseModel):
    sources: list[SourceOut]


# --- snapshots -------------------------------------------------------------------------------
class SnapshotOut(BaseModel):
    """A snapshot as ``lifeboat --json snapshots`` shows it."""

    id: str
    short_id: str
    time: datetime
    source: str
    kind: str
    hostname: str
    username: str
    paths: list[str]
    tags: list[str]
    parent: str | None
    tree: str
    summary: dict[str, Any]
    extra: dict[str, Any]


class UnreadableOut(BaseModel):
    id: str
    short_id: str
    unreadable: str = Field(description="Why it cannot be read")


class SnapshotPage(BaseModel):
    """A page of snapshots, newest first."""

    snapshots: list[SnapshotOut]
    total: int = Field(description="How many match the filters, on every page")
    next_before: str | None = Field(description="Pass as 'before' for the next page (null: this is the last)")
    unreadable: list[UnreadableOut]


class ChangeOut(BaseModel):
    change: Literal["added", "removed", "modified", "metadata"]
    path: str
    type: str


class DiffOut(BaseModel):
    """``lifeboat --json diff FROM TO``."""

    from_: str = Field(alias="from")
    to: str
    counts: dict[str, int]
    changes: list[ChangeOut]
    truncated: bool = Field(description="More changes than 'limit' were found; counts has them all")

    model_config = ConfigDict(populate_by_name=True)


# --- postgres --------------------------------------------------------------------------------
class WalRangeOut(BaseModel):
    first: str
    last: str
    segments: int


class TimelineOut(BaseModel):
    timeline: int
    parent: int | None
    switchpoint: str | None
    branched_from: int | None
    history_file: bool
    live: bool = Field(description="The timeline a default restore follows")
    ranges: list[WalRangeOut]
    gaps: list[str]
    partial: list[str]


class WalArchiveOut(BaseModel):
    files: int
    stored_bytes: int
    history_files: list[str]
    timelines: list[TimelineOut]


class BaseBackupOut(_Open):
    snapshot: str
    system_id: str
    timeline: int
    start_lsn: str
    stop_lsn: str
    start_time: datetime
    stop_time: datetime
    start_wal: str
    stop_wal: str


class RecoverableOut(BaseModel):
    timeline: int
    earliest_time: datetime
    earliest_lsn: str
    earliest_backup: str
    latest_wal: str
    latest_lsn: str
    latest_archived_at: datetime | None
    blocked_by: str | None


class ClusterOut(BaseModel):
    """One database system, as ``lifeboat --json pg info`` shows it."""

    system_id: str
    status: Literal["ok", "gap", "unrestorable", "no-backup"]
    gap: str | None
    backups: list[BaseBackupOut]
    wal: WalArchiveOut
    recoverable: RecoverableOut | None
    sources: list[str]
    guaranteed: dict[str, Any] | None
    existing: dict[str, Any] | None
    warnings: list[str]
    problems: list[str]
    notes: list[str]


class PostgresWindow(BaseModel):
    source: str
    clusters: list[ClusterOut]


# --- verify and drills -----------------------------------------------------------------------
class VerifyOut(BaseModel):
    id: str
    time: datetime
    source: str
    ok: bool
    hostname: str
    summary: dict[str, Any]


class VerifyList(BaseModel):
    results: list[VerifyOut]


class DrillOut(BaseModel):
    id: str
    time: datetime
    source: str
    ok: bool
    status: str = Field(description="passed, failed or missed (an objective)")
    target: str | None
    snapshot: str | None
    rto_seconds: float | None
    rto_objective_seconds: float | None
    achieved_rpo_seconds: float | None
    rpo_objective_seconds: float | None
    seconds: float | None
    problems: list[str]
    hostname: str


class TrendPoint(BaseModel):
    time: datetime
    rto_seconds: float | None
    ok: bool


class DrillTrend(BaseModel):
    source: str
    rto_objective_seconds: float | None
    points: list[TrendPoint] = Field(description="Oldest first")


class DrillList(BaseModel):
    drills: list[DrillOut]
    trend: list[DrillTrend]


# --- repository ------------------------------------------------------------------------------
class GrowthDay(BaseModel):
    day: str = Field(description="YYYY-MM-DD (UTC)")
    snapshots: int
    bytes_total: int = Field(description="What the day's backups read")
    bytes_stored: int = Field(description="What they added to the repository")


class SourceSize(BaseModel):
    source: str
    snapshots: int
    bytes_total: int = Field(description="What its newest snapshot holds")
    bytes_stored: int = Field(description="What all its backups added")
    dedup_ratio: float | None = Field(description="Read over added, over all its backups")


class RepositoryOut(BaseModel):
    location: str
    reachable: bool
    snapshots: int
    unreadable: int
    packs: int | None
    data_bytes: int | None
    free_bytes: int | None
    size_bytes: int | None
    locks: int
    stale_locks: list[str]
    sources: list[SourceSize]
    growth: list[GrowthDay] = Field(description="Per day, oldest first")


# --- audit -----------------------------------------------------------------------------------
class AuditList(BaseModel):
    entries: list[dict[str, Any]] = Field(description="Entries of the audit log (docs/audit.md), oldest first")
