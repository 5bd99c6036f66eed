"""``GET /api/v1/repository``: the repository's size and space, its locks, each source's share
and the growth per day — from the snapshots' own counters (what each backup read and added),
so it costs no walk of the trees (``lifeboat stats`` does that)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from lifeboat.app.api.auth import Viewer
from lifeboat.app.api.read_models import GrowthDay, RepositoryOut, SourceSize
from lifeboat.app.api.routes.readkit import Reads

router = APIRouter(prefix="/api/v1", tags=["read"])


def _bytes(summary: dict[str, Any], key: str) -> int:
    value = summary.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


@router.get("/repository", summary="Repository size, free space, locks, per-source sizes and growth per day")
def repository(view: Reads, _: Viewer) -> RepositoryOut:
    health = view.health().repository
    snapshots, unreadable = view.snapshots()
    days: dict[str, GrowthDay] = {}
    per_source: dict[str, SourceSize] = {}
    read_by_source: dict[str, int] = {}
    for snapshot in snapshots:  # oldest first
        total, stored = _bytes(snapshot.summary, "bytes_total"), _bytes(snapshot.summary, "bytes_stored")
        day = snapshot.time.date().isoformat()
        entry = days.setdefault(day, GrowthDay(day=day, snapshots=0, bytes_total=0, bytes_stored=0))
        entry.snapshots += 1
        entry.bytes_total += total
        entry.bytes_stored += stored
        size = per_source.setdefault(
            snapshot.source,
            SourceSize(source=snapshot.source, snapshots=0, bytes_total=0, bytes_stored=0, dedup_ratio=None),
        )
        size.snapshots += 1
        size.bytes_total = total  # the newest snapshot's
        size.bytes_stored += stored
        read_by_source[snapshot.source] = read_by_source.get(snapshot.source, 0) + total
    for name, size in per_source.items():
        size.dedup_ratio = round(read_by_source[name] / size.bytes_stored, 3) if size.bytes_stored else None
    return RepositoryOut(
        location=health.location,
        reachable=health.reachable,
        snapshots=len(snapshots),
        unreadable=len(unreadable),
        packs=health.packs,
        data_bytes=health.data_bytes,
        free_bytes=health.free_bytes,
        size_bytes=health.size_bytes,
        locks=health.locks,
        stale_locks=list(health.stale_locks),
        sources=[per_source[name] for name in sorted(per_source)],
        growth=[days[day] for day in sorted(days)],
    )
