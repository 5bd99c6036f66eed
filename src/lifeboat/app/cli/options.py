"""Options several commands share."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.framework import Option
from lifeboat.core.snapshot import SnapshotFilter

SourceOpt = Annotated[
    list[str] | None, Option("--source", "-s", metavar="SOURCE", help="Only this source (repeatable).")
]
HostOpt = Annotated[list[str] | None, Option("--host", metavar="HOST", help="Only this host (repeatable).")]
TagOpt = Annotated[list[str] | None, Option("--tag", metavar="TAG", help="Only snapshots with this tag (repeatable).")]
PathOpt = Annotated[
    list[str] | None, Option("--path", metavar="PATH", help="Only snapshots of this path (repeatable).")
]
LockWaitOpt = Annotated[
    str | None,
    Option("--lock-wait", metavar="DURATION", help="Wait up to this long for a conflicting lock (e.g. 5m)."),
]
WorkersOpt = Annotated[
    int | None,
    Option("--workers", "-j", metavar="N", min=1, max=64, help="Parallel workers (default: the number of cores)."),
]
SnapshotTagOpt = Annotated[list[str] | None, Option("--tag", metavar="TAG", help="Tag the snapshot (repeatable).")]
RecordHostOpt = Annotated[str | None, Option("--host", metavar="HOST", help="Record this host name.")]
NoLockOpt = Annotated[
    bool, Option("--no-lock", help="Do not take a shared lock (for read-only storage; unsafe with prune).")
]
PlanOpt = Annotated[
    bool,
    Option("--plan", help="Show what the restore would write where and whether it can succeed; write nothing."),
]


def snapshot_filter(
    source: list[str] | None = None,
    host: list[str] | None = None,
    tag: list[str] | None = None,
    path: list[str] | None = None,
) -> SnapshotFilter:
    return SnapshotFilter(
        sources=tuple(source or ()), hostnames=tuple(host or ()), tags=tuple(tag or ()), paths=tuple(path or ())
    )
