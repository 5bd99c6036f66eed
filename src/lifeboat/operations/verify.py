"""Verifying what a source's backups hold: each snapshot checked by the kind that made it.

The repository's own check (``lifeboat check``) proves that every byte is there and
authentic; a kind's check proves the bytes are what a restore needs — a dump that
``pg_restore --list`` reads, an RDB file ``redis-check-rdb`` accepts, a base backup with its
label. ``verify`` runs those checks on the newest snapshot of every source (or the ones
named, or all), reading the data through the verified loader: a damaged blob is a problem
of the snapshot it belongs to, reported with the others, not a stop.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lifeboat.core.events import Events
from lifeboat.core.snapshot import Snapshot, SnapshotFilter, UnreadableSnapshot
from lifeboat.errors import Cancelled, LifeboatError
from lifeboat.operations.read_lock import read_lock
from lifeboat.repository.repo import Repository
from lifeboat.sources.base import RestoreContext, Verification


@dataclass(frozen=True)
class SnapshotVerification:
    """One snapshot's check by its kind."""

    snapshot: Snapshot
    kind: str  # the source kind that checked it ("" when no kind knows the snapshot's kind)
    verification: Verification
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
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
) -> VerifyReport:
    """Check ``refs`` (default: the newest snapshot of each selected source; ``every``: all
    selected) by the kind that made each. Damage found is reported, not raised; a snapshot
    that cannot be decoded is reported too (its source cannot be known, so it is never
    passed over silently)."""
    from lifeboat.sources.registry import kind_of_snapshot

    events = (events or Events()).for_operation("verify")
    refs = tuple(refs)
    report = VerifyReport()
    with read_lock(repo, use_lock=use_lock):
        if refs:
            chosen = [repo.resolve_snapshot(ref) for ref in refs]
        else:
            found, report.unreadable = repo.snapshots_and_damage()
            chosen = choose(selection.apply(found) if selection is not None else found, refs_given=False, every=every)
        with events.phase("verify", "verifying snapshots", counts=True):
            for snapshot in chosen:
                events.check()
                kind = kind_of_snapshot(snapshot.kind)
                config = (configs or {}).get(snapshot.source)
                ctx = RestoreContext(loader=repo, events=events, config=config, environment=environment)
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
                seconds = time.monotonic() - started
                report.results.append(SnapshotVerification(snapshot, kind.name if kind else "", verification, seconds))
                events.progress.file_done()
    events.result(report.to_json())
    return report


__all__ = ["SnapshotVerification", "VerifyReport", "choose", "verify_snapshots"]
