"""Keeping drills: each result saved as a ``drill`` record in the repository (and the local
record cache), and the history read back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lifeboat.core.drill import (
    DrillResult,
)
from lifeboat.repository.repo import Repository

if TYPE_CHECKING:
    from lifeboat.core.events import Events
    from lifeboat.core.records import Record
    from lifeboat.operations.drill.context import DrillRequest
    from lifeboat.operations.records import RecordCache


# --- recording -----------------------------------------------------------------------------


def drill_record(result: DrillResult, *, time: datetime) -> Record:
    """The repository record of a drill: its verdict, the few numbers a health check reads
    (``summary``) and the whole result."""
    from lifeboat.core.records import DRILL
    from lifeboat.operations.records import new_record

    summary = {
        **result.summary(),
        "target": result.target,
        "rto_objective_seconds": result.rto_objective,
        "rpo_objective_seconds": result.rpo_objective,
        "seconds": round(result.seconds, 3),
        "problems": list(result.reasons[:10]),  # what 'lifeboat records' shows first
    }
    return new_record(DRILL, result.source, ok=result.ok, summary=summary, result=result.to_json(), time=time)


def record_drill(repo: Repository, result: DrillResult, cache: RecordCache | None = None) -> str:
    """Keep ``result`` in the repository (an encrypted ``drill`` record, so the history survives
    the loss of this host) and in the local cache; returns the record's id. A repository that
    refuses the write raises (StorageError): the caller says the drill was not recorded."""
    from lifeboat.operations.records import save_record

    saved = save_record(repo, drill_record(result, time=result.finished or repo.clock()), cache)
    return saved.id


@dataclass(frozen=True)
class RecordedDrill:
    """A drill and where it was kept: ``record`` is its record's id, or None and
    ``not_recorded`` says why the repository refused it."""

    result: DrillResult
    record: str | None
    not_recorded: str | None = None


def drill_and_record(
    repo: Repository,
    name: str,
    config: Any,
    request: DrillRequest,
    *,
    cache: RecordCache | None = None,
    events: Events | None = None,
) -> RecordedDrill:
    """What ``lifeboat drill`` and the daemon's drill job do for one source: :func:`drill_source`,
    then :func:`record_drill`; a repository that refuses the record does not fail the drill."""
    from lifeboat.errors import StorageError
    from lifeboat.operations.drill.run import drill_source

    result = drill_source(repo, name, config, request, events=events)
    try:
        return RecordedDrill(result, record_drill(repo, result, cache))
    except StorageError as exc:
        return RecordedDrill(result, None, exc.message)


def drill_history(
    repo: Repository, *, sources: Sequence[str] = (), cache: RecordCache | None = None
) -> tuple[list[DrillResult], dict[str, str]]:
    """The drills recorded in the repository, newest first (of ``sources`` only when given), and
    the records that cannot be read (id → problem). A record whose result is not a drill result
    is reported with them, never passed over silently."""
    from lifeboat.core.records import DRILL
    from lifeboat.operations.records import list_records

    listing = list_records(repo, kind=DRILL, cache=cache)
    found: list[DrillResult] = []
    unreadable = dict(listing.unreadable)
    for record in listing.records:
        if sources and record.source not in sources:
            continue
        try:
            found.append(DrillResult.from_json(record.result))
        except ValueError as exc:
            unreadable[record.id] = str(exc)
    return sorted(found, key=lambda r: r.started, reverse=True), unreadable
