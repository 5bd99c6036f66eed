"""Restore plans: what a restore would write and where, and whether it can succeed — said
before anything is written.

A plan is built by the kind's ``plan`` verb (:meth:`lifeboat.sources.base.SourceKind.plan`)
from the snapshot and the destination, reading only the repository's metadata and the
destination's state. The refusals it records are the errors the restore itself would stop
with (the same checks, shared with the restore), plus the one only a plan makes: not enough
free space. A front end shows the plan and exits with the first refusal's code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from lifeboat.core.protocols import BlobLoader
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import NodeType
from lifeboat.core.treewalk import walk
from lifeboat.errors import LifeboatError, RestoreRefused, config_key, option, spell_options


@dataclass(frozen=True)
class PlannedWrite:
    """One place a restore writes to: a directory, a file, a program's input or a server."""

    what: str  # in words: "data directory", "tablespace 16385 (fast)", "RDB file"
    where: str  # a path, a program's argv, a server's address
    bytes: int = 0
    files: int = 0
    on_disk: bool = True  # ``where`` is a filesystem path whose free space matters
    state: str = ""  # "absent", "empty", "not empty", "exists": what is there now
    peak: int | None = None  # the most of ``bytes`` on disk at once (WAL is recycled as replayed); None: all

    @property
    def space(self) -> int:
        """What the write takes on its filesystem at most."""
        return self.bytes if self.peak is None else min(self.peak, self.bytes)

    def to_json(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "where": self.where,
            "bytes": self.bytes,
            "files": self.files,
            "on_disk": self.on_disk,
            "state": self.state,
            "space": self.space if self.on_disk else 0,
        }


@dataclass(frozen=True)
class FreeSpace:
    """The free space of one filesystem against what the restore writes on it."""

    path: str  # the nearest existing directory at or above the destinations (statvfs'd)
    free: int  # bytes available to this user
    needed: int
    destinations: tuple[str, ...] = ()

    @property
    def fits(self) -> bool:
        return self.needed <= self.free

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "free": self.free,
            "needed": self.needed,
            "fits": self.fits,
            "destinations": list(self.destinations),
        }


@dataclass(frozen=True)
class Estimate:
    """How long the restore should take, from the last drill's measured rates (None: unknown)."""

    seconds: float | None
    basis: str  # how it was reckoned, or why it is unknown

    def to_json(self) -> dict[str, Any]:
        return {"seconds": None if self.seconds is None else round(self.seconds, 1), "basis": self.basis}


UNKNOWN = Estimate(None, "unknown (no drill has run)")


@dataclass
class RestorePlan:
    """What a restore of ``snapshot`` would do, and what stops it (``refusals``)."""

    kind: str
    snapshot: str  # its id
    snapshot_time: str
    destination: str  # in words
    writes: list[PlannedWrite] = field(default_factory=list)
    space: list[FreeSpace] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # what was checked and holds, in words
    unchecked: list[str] = field(default_factory=list)  # what only the restore itself can find out
    warnings: list[str] = field(default_factory=list)
    refusals: list[LifeboatError] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # the kind's own lines for a text front end
    details: dict[str, Any] = field(default_factory=dict)  # the kind's own part of the JSON form
    estimate: Estimate = UNKNOWN

    @property
    def feasible(self) -> bool:
        return not self.refusals

    @property
    def bytes(self) -> int:
        return sum(w.bytes for w in self.writes)

    @property
    def files(self) -> int:
        return sum(w.files for w in self.writes)

    def refuse(self, error: LifeboatError) -> None:
        self.refusals.append(error)

    def attempt(self, check: Callable[[], object], passed: str = "") -> bool:
        """Run one of the restore's own checks: its error becomes a refusal; ``passed`` is
        recorded when it holds. True when it held."""
        try:
            check()
        except LifeboatError as exc:
            self.refuse(exc)
            return False
        if passed:
            self.checks.append(passed)
        return True

    def to_json(self, spell: Callable[[str], str] = config_key) -> dict[str, Any]:
        """The documented JSON form (docs/cli.md, "Restore plans")."""
        return {
            "plan": True,
            "feasible": self.feasible,
            "kind": self.kind,
            "snapshot": self.snapshot,
            "snapshot_time": self.snapshot_time,
            "destination": self.destination,
            "writes": [w.to_json() for w in self.writes],
            "files": self.files,
            "bytes": self.bytes,
            "space": [s.to_json() for s in self.space],
            "checks": list(self.checks),
            "unchecked": list(self.unchecked),
            "warnings": [spell_options(w, spell) for w in self.warnings],
            "refusals": [_refusal_json(e, spell) for e in self.refusals],
            "estimate": self.estimate.to_json(),
            "details": self.details,
        }


def _refusal_json(error: LifeboatError, spell: Callable[[str], str]) -> dict[str, Any]:
    message, hint = error.spelled(spell)
    return {"message": message, "hint": hint, "exit_code": int(error.exit_code)}


# --- what is there now -------------------------------------------------------------------------


def path_state(path: str) -> str:
    """``absent``, ``empty``, ``not empty`` (a directory) or ``exists`` (anything else)."""
    try:
        if os.path.isdir(path):
            return "not empty" if any(True for _ in os.scandir(path)) else "empty"
    except OSError:
        return "exists"
    return "exists" if os.path.lexists(path) else "absent"


def nearest_existing(path: str) -> str:
    """``path`` itself when it is a directory, else its nearest existing parent directory."""
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def available_bytes(directory: str) -> tuple[int, int]:
    """(free bytes for an unprivileged writer, the filesystem's device) of ``directory``."""
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize, os.stat(directory).st_dev


def free_space(
    writes: Iterable[PlannedWrite], measure: Callable[[str], tuple[int, int]] = available_bytes
) -> list[FreeSpace]:
    """The free space of each filesystem the writes land on, against their bytes (writes to
    one filesystem add up). ``measure`` gives (free bytes, device) of an existing directory."""
    by_device: dict[int, tuple[str, int, int, list[str]]] = {}
    for write in writes:
        if not write.on_disk:
            continue
        directory = nearest_existing(write.where)
        free, device = measure(directory)
        path, _, needed, destinations = by_device.get(device, (directory, free, 0, []))
        by_device[device] = (path, free, needed + write.space, [*destinations, write.where])
    return [FreeSpace(path, free, needed, tuple(dest)) for path, free, needed, dest in by_device.values()]


def judge_space(plan: RestorePlan, *, force: bool, measure: Callable[[str], tuple[int, int]] = available_bytes) -> None:
    """Measure the free space for the plan's writes; too little is a refusal, or with
    ``force`` (the target's present content goes first, which may free enough) a warning."""
    from lifeboat.core.units import format_bytes

    try:
        plan.space = free_space(plan.writes, measure)
    except OSError as exc:
        plan.unchecked.append(f"free space: {exc.strerror or exc}")
        return
    for space in plan.space:
        if space.fits:
            continue
        text = (
            f"{format_bytes(space.needed)} to write on the filesystem of {space.path}, "
            f"but only {format_bytes(space.free)} is free"
        )
        if force:
            plan.warnings.append(f"{text}; {option('force')} removes what is there first, which may free enough")
        else:
            plan.refuse(RestoreRefused(text, hint="free space there or restore elsewhere"))
    if plan.space and all(s.fits for s in plan.space):
        plan.checks.append("free space suffices")


# --- counting what a snapshot holds --------------------------------------------------------------


@dataclass
class Counted:
    files: int = 0
    dirs: int = 0
    links: int = 0
    bytes: int = 0


def count_tree(loader: BlobLoader, tree_id: bytes) -> Counted:
    """Files, directories, links and file bytes below ``tree_id`` (metadata only)."""
    counted = Counted()
    for _, node in walk(loader, tree_id):
        if node.type is NodeType.FILE:
            counted.files += 1
            counted.bytes += node.size
        elif node.type is NodeType.DIR:
            counted.dirs += 1
        elif node.type is NodeType.SYMLINK:
            counted.links += 1
    return counted


# --- the plan a kind gets unless it knows more ----------------------------------------------------


def new_plan(kind: str, snapshot: Snapshot, destination: str) -> RestorePlan:
    return RestorePlan(
        kind=kind,
        snapshot=snapshot.id,
        snapshot_time=snapshot.time.isoformat(timespec="seconds"),
        destination=destination,
    )


def count_part(loader: BlobLoader, snapshot: Snapshot, subpath: str) -> Counted:
    """What the snapshot (or ``subpath`` of it) holds."""
    from lifeboat.core.treewalk import find
    from lifeboat.errors import ObjectNotFound

    if not subpath.strip("/"):
        return count_tree(loader, snapshot.tree)
    node = find(loader, snapshot.tree, subpath.strip("/"))
    if node is None:
        raise ObjectNotFound(f"snapshot {snapshot.short_id} has no path /{subpath.strip('/')}")
    if node.subtree is not None:
        return count_tree(loader, node.subtree)
    return Counted(files=1, bytes=node.size) if node.type is NodeType.FILE else Counted()


def directory_plan(
    kind: str, loader: BlobLoader, snapshot: Snapshot, path: str, *, subpath: str, force: bool, destination: str
) -> RestorePlan:
    """The snapshot's files below ``path``: the files restore's target check and free space."""
    from lifeboat.sources.files.restorer import check_target

    counted = count_part(loader, snapshot, subpath)
    plan = new_plan(kind, snapshot, destination)
    plan.writes.append(PlannedWrite("files", path, counted.bytes, counted.files, state=path_state(path)))
    plan.attempt(lambda: check_target(path, force=force), "the target can be written")
    judge_space(plan, force=force)
    return plan


def stream_plan(
    kind: str, loader: BlobLoader, snapshot: Snapshot, *, subpath: str, what: str, destination: str
) -> RestorePlan:
    """The snapshot's bytes sent to a program or a server (no free space of ours to judge)."""
    counted = count_part(loader, snapshot, subpath)
    plan = new_plan(kind, snapshot, destination)
    plan.writes.append(PlannedWrite(what, destination, counted.bytes, counted.files, on_disk=False))
    return plan
