"""Verifying what a source's backups hold: each snapshot checked by the kind that made it.

The repository's own check (``lifeboat check``) proves that every byte is there and
authentic; a kind's check proves the bytes are what a restore needs — a dump that
``pg_restore --list`` reads, an RDB file ``redis-check-rdb`` accepts, a base backup with its
label. ``verify`` runs those checks on the newest snapshot of every source (or the ones
named, or all), reading the data through the verified loader: a damaged blob is a problem
of the snapshot it belongs to, reported with the others, not a stop.

Beyond the kind's check, a verify can read back every blob the chosen snapshots need (``read
data``, :mod:`lifeboat.operations.verify_data`); a PostgreSQL base backup always has its WAL
checked for continuity from its start through the newest archived WAL
(:mod:`lifeboat.operations.pg_continuity`, which reads that WAL back with ``read data``); a files
snapshot whose paths are on this host is spot-checked against the live files
(:mod:`lifeboat.sources.files.spotcheck`). :func:`record_report` keeps the results in the
repository, one record per source (:mod:`lifeboat.operations.records`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lifeboat.core.basebackup import KIND as BASE_BACKUP_KIND
from lifeboat.core.basebackup import BaseBackup
from lifeboat.core.events import Events
from lifeboat.core.host import this_host
from lifeboat.core.patterns import PathFilter
from lifeboat.core.records import VERIFY, Record
from lifeboat.core.snapshot import Snapshot, SnapshotFilter, UnreadableSnapshot
from lifeboat.errors import Cancelled, LifeboatError, StorageError
from lifeboat.operations.read_lock import read_lock
from lifeboat.operations.records import RecordCache, new_record, save_record
from lifeboat.operations.verify_data import DataReader
from lifeboat.repository.check import DataSubset
from lifeboat.repository.repo import Repository
from lifeboat.sources.base import RestoreContext, Verification

SPOT_CHECK_FILES = 20  # live files a files snapshot is compared with by default
FILES_KIND = "files"


@dataclass(frozen=True)
class VerifyOptions:
    """How deep a verify goes beyond each kind's own check."""

    read_data: DataSubset | None = None  # read back the blobs (and WAL) the snapshots need
    spot_check: int = SPOT_CHECK_FILES  # live files compared with a files snapshot (0: none)
    workers: int = 2
    rng: random.Random | None = None


@dataclass
class SnapshotVerification:
    """One snapshot's check by its kind."""

    snapshot: Snapshot
    kind: str  # the source kind that checked it ("" when no kind knows the snapshot's kind)
    verification: Verification
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)  # read_data, wal, spot_check: what each found
    record: str | None = None  # the id of the record that holds this result

    def to_json(self) -> dict[str, Any]:
        return {
            **self.details,
            "record": self.record,
            "snapshot": self.snapshot.id,
            "source": self.snapshot.source,
            "time": self.snapshot.time.isoformat(),
            "kind": self.snapshot.kind,
            "checked": self.verification.checked,
            "ok": self.verification.ok,
            "problems": list(self.verification.problems),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class VerifyReport:
    """Every snapshot verified, in the order checked."""

    results: list[SnapshotVerification] = field(default_factory=list)
    unreadable: list[UnreadableSnapshot] = field(default_factory=list)  # snapshots that cannot be decoded
    records: list[str] = field(default_factory=list)  # the records that hold this run's results
    not_recorded: str = ""  # why the results could not be recorded

    @property
    def failed(self) -> list[SnapshotVerification]:
        return [result for result in self.results if not result.verification.ok]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unreadable

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshots": [result.to_json() for result in self.results],
            "unreadable": [{"snapshot": bad.id, "problem": bad.reason} for bad in self.unreadable],
            "verified": len(self.results),
            "failed": len(self.failed) + len(self.unreadable),
            "records": self.records,
            "record": self.records[0] if len(self.records) == 1 else None,
        }


def choose(snapshots: Iterable[Snapshot], *, refs_given: bool, every: bool) -> list[Snapshot]:
    """The newest snapshot of each source (or every snapshot), oldest first."""
    ordered = sorted(snapshots, key=lambda snapshot: snapshot.time)
    if every or refs_given:
        return ordered
    newest: dict[str, Snapshot] = {}
    for snapshot in ordered:
        newest[snapshot.source] = snapshot
    return sorted(newest.values(), key=lambda snapshot: snapshot.time)


def verify_snapshots(
    repo: Repository,
    refs: Iterable[str] = (),
    *,
    selection: SnapshotFilter | None = None,
    every: bool = False,
    use_lock: bool = True,
    events: Events | None = None,
    configs: Mapping[str, Any] | None = None,
    environment: Mapping[str, str] | None = None,
    options: VerifyOptions | None = None,
) -> VerifyReport:
    """Check ``refs`` (default: the newest snapshot of each selected source; ``every``: all
    selected) by the kind that made each, and as deep as ``options`` asks. Damage found is
    reported, not raised; a snapshot that cannot be decoded is reported too (its source cannot
    be known, so it is never passed over silently)."""
    events = (events or Events()).for_operation("verify")
    options = options or VerifyOptions()
    refs = tuple(refs)
    report = VerifyReport()
    with read_lock(repo, use_lock=use_lock):
        found, report.unreadable = repo.snapshots_and_damage()
        if refs:
            chosen = [repo.resolve_snapshot(ref) for ref in refs]
            report.unreadable = []
        else:
            chosen = choose(selection.apply(found) if selection is not None else found, refs_given=False, every=every)
        checker = _Checker(repo, events, configs or {}, environment, options, found, chosen)
        with events.phase("verify", "verifying snapshots", counts=True):
            for snapshot in chosen:
                events.check()
                report.results.append(checker.verify(snapshot))
                events.progress.file_done()
    events.result(report.to_json())
    return report


class _Checker:
    """Every check of one snapshot, with what the run shares (the blobs read, the base backups)."""

    def __init__(
        self,
        repo: Repository,
        events: Events,
        configs: Mapping[str, Any],
        environment: Mapping[str, str] | None,
        options: VerifyOptions,
        found: list[Snapshot],
        chosen: list[Snapshot],
    ) -> None:
        self.repo = repo
        self.events = events
        self.configs = configs
        self.environment = environment
        self.options = options
        self.rng = options.rng or random.Random()  # noqa: S311 - sampling, not crypto
        self.data = (
            DataReader(repo, options.read_data, rng=self.rng, check=events.check)
            if options.read_data is not None
            else None
        )
        known = {s.id for s in found}
        self.backups = _base_backups([*found, *(s for s in chosen if s.id not in known)])
        self.chosen_ids = {s.id for s in chosen}

    def verify(self, snapshot: Snapshot) -> SnapshotVerification:
        from lifeboat.sources.registry import kind_of_snapshot

        kind = kind_of_snapshot(snapshot.kind)
        config = self.configs.get(snapshot.source)
        ctx = RestoreContext(loader=self.repo, events=self.events, config=config, environment=self.environment)
        started = time.monotonic()
        if kind is None:
            verification = Verification(checked=f"nothing: no source kind makes {snapshot.kind!r} snapshots")
        else:
            try:
                verification = kind.verify(ctx, snapshot)
            except Cancelled:
                raise
            except LifeboatError as exc:
                verification = Verification(checked=f"its {kind.name} content", problems=(exc.message,))
        checked, problems, details = [verification.checked], list(verification.problems), {}
        if self.data is not None:
            reading = self.data.read(snapshot)
            checked.append(f"{self._how_much()} of the {reading.blobs} data blobs it needs read back")
            problems += reading.all_problems()
            details["read_data"] = reading.to_json()
        if snapshot.kind == BASE_BACKUP_KIND:
            self._wal(snapshot, checked, problems, details)
        if snapshot.kind == FILES_KIND and self.options.spot_check > 0:
            self._spot_check(snapshot, config, checked, problems, details)
        seconds = time.monotonic() - started
        combined = Verification(checked="; ".join(checked), problems=tuple(problems))
        return SnapshotVerification(snapshot, kind.name if kind else "", combined, seconds, details)

    def _how_much(self) -> str:
        subset = self.options.read_data
        if subset is None or (subset.part is None and subset.fraction >= 1):
            return "each"
        if subset.part is not None:
            return f"the share {subset.part[0]}/{subset.part[1]}"
        return f"a {subset.fraction * 100:g}% sample"

    def _wal(self, snapshot: Snapshot, checked: list[str], problems: list[str], details: dict[str, Any]) -> None:
        from lifeboat.operations.pg_continuity import check_wal_continuity

        try:
            backup = BaseBackup.of(snapshot)
        except LifeboatError:
            return  # the kind's check reported it
        same_system = [b for b in self.backups if b.system_id == backup.system_id]
        older = [b for b in same_system if b.start_lsn < backup.start_lsn and b.snapshot_id not in self.chosen_ids]
        try:
            wal = check_wal_continuity(
                self.repo,
                backup,
                same_system,
                also=older,
                read_data=self.options.read_data,
                rng=self.rng,
                workers=self.options.workers,
                check=self.events.check,
            )
        except StorageError as exc:
            problems.append(f"its archived WAL cannot be listed: {exc}")
            return
        checked.append(wal.checked)
        problems += wal.problems
        details["wal"] = wal.to_json()

    def _spot_check(
        self, snapshot: Snapshot, config: Any, checked: list[str], problems: list[str], details: dict[str, Any]
    ) -> None:
        from lifeboat.sources.files.spotcheck import spot_check

        patterns = PathFilter.build(getattr(config, "include", ()), getattr(config, "exclude", ()))
        spot = spot_check(
            self.repo,
            snapshot,
            self.options.spot_check,
            path_filter=patterns,
            hostname=this_host(),
            rng=self.rng,
            check=self.events.check,
        )
        details["spot_check"] = spot.to_json()
        if spot.skipped:
            checked.append(f"no spot check ({spot.skipped})")
            return
        checked.append(f"{spot.sampled} live files unchanged since the snapshot compared with it")
        problems += spot.problems


def _base_backups(snapshots: list[Snapshot]) -> list[BaseBackup]:
    """The readable base backup records (one that is not is reported by the kind's check)."""
    found = []
    for snapshot in snapshots:
        if snapshot.kind == BASE_BACKUP_KIND:
            try:
                found.append(BaseBackup.of(snapshot))
            except LifeboatError:
                continue
    return found


def verify_and_record(
    repo: Repository,
    refs: Iterable[str] = (),
    *,
    selection: SnapshotFilter | None = None,
    every: bool = False,
    events: Events | None = None,
    configs: Mapping[str, Any] | None = None,
    environment: Mapping[str, str] | None = None,
    options: VerifyOptions | None = None,
    cache: RecordCache | None = None,
) -> VerifyReport:
    """What ``lifeboat verify`` and the daemon's verify job do: :func:`verify_snapshots` under
    the repository's lock, then :func:`record_report` keeps the results in the repository."""
    report = verify_snapshots(
        repo,
        refs,
        selection=selection,
        every=every,
        use_lock=True,
        events=events,
        configs=configs,
        environment=environment,
        options=options,
    )
    return record_report(repo, report, cache=cache, options=options)


def record_report(
    repo: Repository, report: VerifyReport, *, cache: RecordCache | None = None, options: VerifyOptions | None = None
) -> VerifyReport:
    """Keep the results in the repository: one ``verify`` record per source (and one with source
    "" for snapshots that cannot be decoded). A repository that cannot be written to (read-only
    storage, no lock taken) keeps nothing: ``report.not_recorded`` says why."""
    options = options or VerifyOptions()
    by_source: dict[str, list[SnapshotVerification]] = {}
    for result in report.results:
        by_source.setdefault(result.snapshot.source, []).append(result)
    plans: list[tuple[Record, list[SnapshotVerification]]] = []
    for source, results in by_source.items():
        plans.append((_record(repo, source, results, [], options), results))
    if report.unreadable:
        plans.append((_record(repo, "", [], report.unreadable, options), []))
    try:
        for record, results in plans:
            saved = save_record(repo, record, cache)
            report.records.append(saved.id)
            for result in results:
                result.record = saved.id
    except StorageError as exc:
        report.not_recorded = exc.message
    return report


def _record(
    repo: Repository,
    source: str,
    results: list[SnapshotVerification],
    unreadable: list[UnreadableSnapshot],
    options: VerifyOptions,
) -> Record:
    newest = max(results, key=lambda r: r.snapshot.time) if results else None
    problems = [p for r in results for p in r.verification.problems] + [bad.describe() for bad in unreadable]
    summary = {
        "snapshots": len(results) + len(unreadable),
        "failed": sum(1 for r in results if not r.verification.ok) + len(unreadable),
        "newest_snapshot": newest.snapshot.id if newest else None,
        "newest_snapshot_time": newest.snapshot.time.isoformat() if newest else None,
        "read_data": options.read_data is not None,
        "spot_checked": sum(int(r.details.get("spot_check", {}).get("sampled", 0)) for r in results),
        "problems": problems[:10],
        "seconds": round(sum(r.seconds for r in results), 3),
    }
    result = {
        "snapshots": [r.to_json() for r in results],
        "unreadable": [{"snapshot": bad.id, "problem": bad.reason} for bad in unreadable],
    }
    return new_record(VERIFY, source, ok=not problems, summary=summary, result=result, time=repo.clock())


__all__ = ["SnapshotVerification", "VerifyOptions", "VerifyReport", "choose", "record_report", "verify_snapshots"]
