"""``GET /api/v1/snapshots`` (filters, newest first, paged), ``GET /api/v1/snapshots/{id}``
and ``GET /api/v1/snapshots/{id}/diff/{other}``: what ``lifeboat snapshots`` and ``lifeboat
diff`` show, from the daemon's listing (at most a few seconds old)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Query

from lifeboat.app.api.auth import Viewer
from lifeboat.app.api.read_models import ChangeOut, DiffOut, SnapshotOut, SnapshotPage, UnreadableOut
from lifeboat.app.api.reads import ReadView
from lifeboat.app.api.routes.readkit import NOT_FOUND, Reads
from lifeboat.core.snapshot import Snapshot, SnapshotFilter
from lifeboat.errors import IntegrityError, ObjectNotFound

router = APIRouter(prefix="/api/v1", tags=["read"])
HEX = "0123456789abcdef"


@router.get("/snapshots", summary="Snapshots, newest first, a page at a time", responses=NOT_FOUND)
def snapshots(
    view: Reads,
    _: Viewer,
    source: Annotated[str | None, Query(description="Only this source's")] = None,
    host: Annotated[str | None, Query(description="Only those taken on this host")] = None,
    kind: Annotated[str | None, Query(description="Only this kind of source's (files, postgres, …)")] = None,
    tag: Annotated[str | None, Query(description="Only those with this tag")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many")] = 100,
    before: Annotated[
        str | None, Query(description="Only those older than this snapshot (the previous page's next_before)")
    ] = None,
) -> SnapshotPage:
    found, unreadable = view.snapshots()
    chosen = SnapshotFilter(
        sources=(source,) if source else (),
        hostnames=(host,) if host else (),
        kinds=(kind,) if kind else (),
        tags=(tag,) if tag else (),
    ).apply(list(found))
    newest_first = list(reversed(chosen))
    start = 0
    if before is not None:
        position = next((i for i, s in enumerate(newest_first) if s.id == before), None)
        if position is None:
            raise ObjectNotFound(
                f"'before': no snapshot {before!r} among those listed",
                hint="pass the next_before of the previous page, a whole snapshot id",
            )
        start = position + 1
    page = newest_first[start : start + limit]
    more = start + limit < len(newest_first)
    return SnapshotPage(
        snapshots=[SnapshotOut.model_validate(s.to_json()) for s in page],
        total=len(newest_first),
        next_before=page[-1].id if page and more else None,
        unreadable=[UnreadableOut.model_validate(u.to_json()) for u in unreadable],
    )


def _resolve(view: ReadView, ref: str) -> Snapshot:
    """The snapshot whose id is or starts with ``ref`` (404 for none, or more than one)."""
    if not ref or any(c not in HEX for c in ref):
        raise ObjectNotFound(f"{ref!r} is not a snapshot id", hint="give a snapshot id or a prefix of one")
    listed, unreadable = view.snapshots()
    matches = [s for s in listed if s.id.startswith(ref)]
    if len(matches) > 1:
        raise ObjectNotFound(f"snapshot id {ref!r} is ambiguous ({len(matches)} match)", hint="give more digits")
    if matches:
        return matches[0]
    damaged = [u for u in unreadable if u.id.startswith(ref)]
    if damaged:
        raise IntegrityError(damaged[0].describe(), hint="'lifeboat check' says what else is damaged")
    raise ObjectNotFound(f"no snapshot {ref!r}", hint="GET /api/v1/snapshots lists them")


@router.get("/snapshots/{snapshot_id}", summary="One snapshot (by id or a prefix)", responses=NOT_FOUND)
def snapshot(snapshot_id: str, view: Reads, _: Viewer) -> SnapshotOut:
    return SnapshotOut.model_validate(_resolve(view, snapshot_id).to_json())


@router.get(
    "/snapshots/{snapshot_id}/diff/{other}",
    summary="What changed from one snapshot to another, as 'lifeboat diff'",
    responses=NOT_FOUND,
)
def diff(
    snapshot_id: str,
    other: str,
    view: Reads,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=100000, description="At most this many changes listed")] = 1000,
) -> DiffOut:
    old, new = _resolve(view, snapshot_id), _resolve(view, other)
    changes = view.diff(old, new)
    return DiffOut.model_validate(
        {
            "from": old.id,
            "to": new.id,
            "counts": dict(Counter(c.kind for c in changes)),
            "changes": [ChangeOut.model_validate(c.to_json()) for c in changes[:limit]],
            "truncated": len(changes) > limit,
        }
    )
