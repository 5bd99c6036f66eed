"""Snapshot records: what was backed up, when, from where, and the root tree.

A snapshot is a small JSON document stored as its own encrypted object; its id is the
name of that object. ``source`` names the thing backed up (a configured source, or the
paths), so retention and change detection work per source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from lifeboat.core.ids import ID_BYTES
from lifeboat.errors import IntegrityError

SNAPSHOT_VERSION = 1


@dataclass(frozen=True)
class Snapshot:
    """One backup of one source at one moment."""

    time: datetime
    source: str
    kind: str  # "files", "stdin", "postgres", ...
    tree: bytes
    hostname: str = ""
    username: str = ""
    paths: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    parent: str | None = None
    program_version: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    id: str = ""  # storage id; empty until saved or loaded

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("snapshot time must be timezone-aware")

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def with_id(self, snapshot_id: str) -> Snapshot:
        return replace(self, id=snapshot_id)

    def encode(self) -> bytes:
        return json.dumps(self.to_doc(), sort_keys=True, separators=(",", ":")).encode("ascii")

    def to_doc(self) -> dict[str, Any]:
        """The stored record's JSON document (:meth:`encode` serialises it; :meth:`from_doc` reads it)."""
        return {
            "version": SNAPSHOT_VERSION,
            "time": self.time.astimezone(UTC).isoformat(),
            "source": self.source,
            "kind": self.kind,
            "tree": self.tree.hex(),
            "hostname": self.hostname,
            "username": self.username,
            "paths": list(self.paths),
            "tags": sorted(self.tags),
            "parent": self.parent,
            "program_version": self.program_version,
            "summary": self.summary,
            "extra": self.extra,
        }

    @classmethod
    def decode(cls, data: bytes, snapshot_id: str = "") -> Snapshot:
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise IntegrityError(f"snapshot {snapshot_id[:8]} is not valid JSON") from exc
        return cls.from_doc(doc, snapshot_id)

    @classmethod
    def from_doc(cls, doc: Any, snapshot_id: str = "") -> Snapshot:
        """The snapshot a record's parsed JSON describes (the local metadata cache keeps records
        parsed, so ten thousand cost one JSON parse, not ten thousand)."""
        if not isinstance(doc, dict) or doc.get("version") != SNAPSHOT_VERSION:
            raise IntegrityError(f"snapshot {snapshot_id[:8]} has an unsupported version")
        try:
            tree = bytes.fromhex(doc["tree"])
            if len(tree) != ID_BYTES:
                raise ValueError("tree id has the wrong length")
            time = datetime.fromisoformat(doc["time"])
            if time.tzinfo is None:
                raise ValueError("time has no timezone")
            return cls(
                time=time,
                source=str(doc["source"]),
                kind=str(doc["kind"]),
                tree=tree,
                hostname=str(doc.get("hostname", "")),
                username=str(doc.get("username", "")),
                paths=tuple(str(p) for p in doc.get("paths", [])),
                tags=tuple(str(t) for t in doc.get("tags", [])),
                parent=doc.get("parent"),
                program_version=str(doc.get("program_version", "")),
                summary=dict(doc.get("summary", {})),
                extra=dict(doc.get("extra", {})),
                id=snapshot_id,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"snapshot {snapshot_id[:8]} is malformed: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        """The public JSON form (``snapshots --json``, the API)."""
        return {
            "id": self.id,
            "short_id": self.short_id,
            "time": self.time.astimezone(UTC).isoformat(),
            "source": self.source,
            "kind": self.kind,
            "hostname": self.hostname,
            "username": self.username,
            "paths": list(self.paths),
            "tags": list(self.tags),
            "parent": self.parent,
            "tree": self.tree.hex(),
            "summary": self.summary,
            "extra": self.extra,
        }


@dataclass(frozen=True)
class SnapshotFilter:
    """Selects snapshots by source, host, kind, tags (all given must be present) and paths."""

    sources: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def matches(self, snapshot: Snapshot) -> bool:
        return (
            (not self.sources or snapshot.source in self.sources)
            and (not self.hostnames or snapshot.hostname in self.hostnames)
            and (not self.kinds or snapshot.kind in self.kinds)
            and set(self.tags) <= set(snapshot.tags)
            and (not self.paths or set(self.paths) <= set(snapshot.paths))
        )

    def apply(self, snapshots: list[Snapshot]) -> list[Snapshot]:
        return [s for s in snapshots if self.matches(s)]


def find_parent(snapshots: list[Snapshot], source: str, hostname: str, kind: str) -> Snapshot | None:
    """The newest snapshot of ``source`` taken on ``hostname`` with ``kind``: what a new backup
    of the same source compares against (``snapshots`` oldest first, as a repository lists them)."""
    candidates = SnapshotFilter(sources=(source,), hostnames=(hostname,), kinds=(kind,)).apply(snapshots)
    return candidates[-1] if candidates else None


@dataclass(frozen=True)
class UnreadableSnapshot:
    """A snapshot object that is stored but cannot be decoded (damaged or foreign bytes)."""

    id: str
    reason: str

    def describe(self) -> str:
        return f"snapshot {self.id[:8]} cannot be read: {self.reason}"

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "short_id": self.id[:8], "unreadable": self.reason}
