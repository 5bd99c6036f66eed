"""Comparing the host's files with a snapshot of them (``diff --live``): what a restore would
put back. Added, removed, content changed, mode or owner changed — by path.

No content is shown unless asked (``content``: a unified diff of each changed text file), and
never for a *secret* (the source's ``secrets`` patterns, else the default ones): a secret is
reported only as ``changed``, not even whether its content or its mode moved. Content is
compared by the repository's own keyed chunk ids (the live file is cut and hashed as a backup
would), so nothing of the stored content is read unless a text diff is asked for.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lifeboat.core.patterns import PathFilter, split_path
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Node, NodeType
from lifeboat.core.treewalk import find, walk
from lifeboat.errors import NotSupported, ObjectNotFound, UsageError
from lifeboat.operations.read_lock import read_lock
from lifeboat.repository.repo import Repository

LIVE_KINDS = ("files", "config")
_TYPES = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo"}


@dataclass(frozen=True)
class LiveChange:
    change: str  # added | removed | content | metadata | changed (a secret)
    path: str
    type: str
    details: tuple[str, ...] = ()  # "mode 0644 -> 0600", "owner root -> www-data" (never for a secret)
    secret: bool = False
    text_diff: tuple[str, ...] | None = None  # asked for (never a secret's): unified diff lines

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"change": self.change, "path": self.path, "type": self.type, "secret": self.secret}
        if self.details:
            doc["details"] = list(self.details)
        if self.text_diff is not None:
            doc["diff"] = list(self.text_diff)
        return doc


@dataclass
class LiveDiff:
    """The host's files against ``snapshot``."""

    snapshot: Snapshot
    changes: list[LiveChange] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # live files that could not be read

    def counts(self) -> dict[str, int]:
        counted = Counter(change.change for change in self.changes)
        return {kind: counted.get(kind, 0) for kind in ("added", "removed", "content", "metadata", "changed")}

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.snapshot.source,
            "snapshot": self.snapshot.id,
            "time": self.snapshot.time.isoformat(),
            "paths": list(self.snapshot.paths),
            "changes": [change.to_json() for change in self.changes],
            "counts": self.counts(),
            "unreadable": self.unreadable,
        }


@dataclass(frozen=True)
class LiveDiffRequest:
    """Compare the host with the newest snapshot of ``source`` (or ``snapshot``), taking what a
    backup with ``includes``/``excludes`` takes; ``secrets`` None: the snapshot's patterns."""

    source: str
    snapshot: str | None = None
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    one_file_system: bool = False
    secrets: tuple[str, ...] | None = None
    hostname: str | None = None  # prefer this host's snapshots
    content: bool = False  # a unified diff of each changed text file that is not a secret


def live_diff(repo: Repository, request: LiveDiffRequest, *, use_lock: bool = True) -> LiveDiff:
    from lifeboat.sources.config.inventory import SECRET_PATTERNS, live_entries, secret_filter

    with read_lock(repo, use_lock=use_lock):
        snapshot = _snapshot(repo, request)
        if snapshot.kind not in LIVE_KINDS:
            raise NotSupported(
                f"snapshot {snapshot.short_id} is a {snapshot.kind} backup: only files and config backups "
                "compare with the host's files"
            )
        recorded = snapshot.extra.get("inventory", {}).get("secret_patterns") if snapshot.kind == "config" else None
        patterns = request.secrets if request.secrets is not None else tuple(recorded or SECRET_PATTERNS)
        secrets = secret_filter(patterns)
        path_filter = PathFilter.build(request.includes, request.excludes)
        stored = dict(_stored_entries(repo, snapshot))
        live = dict(live_entries(snapshot.paths, path_filter, one_file_system=request.one_file_system))
        compare = _Comparison(repo, secrets, dirs_by_presence=not request.includes, text_diffs=request.content)
        for parts in sorted(stored.keys() | live.keys()):
            compare.entry(parts, stored.get(parts), live.get(parts))
        return LiveDiff(snapshot, compare.changes, compare.unreadable)


def _snapshot(repo: Repository, request: LiveDiffRequest) -> Snapshot:
    if request.snapshot:
        found = repo.resolve_snapshot(request.snapshot)
        if found.source != request.source:
            raise UsageError(f"snapshot {found.short_id} is of source {found.source!r}, not {request.source!r}")
        return found
    candidates = [s for s in repo.snapshots() if s.source == request.source]
    if not candidates:
        raise ObjectNotFound(
            f"no snapshot of source {request.source!r}", hint="'lifeboat snapshots' lists the sources backed up"
        )
    ours = [s for s in candidates if request.hostname and s.hostname == request.hostname]
    return max(ours or candidates, key=lambda s: s.time)


def _stored_entries(repo: Repository, snapshot: Snapshot) -> Iterator[tuple[tuple[str, ...], Node]]:
    """The snapshot's entries at and below each of its paths."""
    for path in snapshot.paths:
        parts = split_path(path)
        node = find(repo, snapshot.tree, "/".join(parts))
        if node is None:
            continue
        yield parts, node
        if node.type is NodeType.DIR and node.subtree is not None:
            for rel, child in walk(repo, node.subtree, "/".join(parts)):
                yield tuple(rel.split("/")), child


class _Comparison:
    def __init__(self, repo: Repository, secrets: PathFilter, *, dirs_by_presence: bool, text_diffs: bool) -> None:
        from lifeboat.sources.config.inventory import is_secret
        from lifeboat.sources.files.metadata import OwnerNames

        self._repo = repo
        self._chunker = repo.chunker()
        self._secrets = secrets
        self._is_secret = is_secret
        self._owners = OwnerNames()
        self._dirs_by_presence = dirs_by_presence
        self._text_diffs = text_diffs
        self.changes: list[LiveChange] = []
        self.unreadable: list[str] = []

    def entry(self, parts: tuple[str, ...], node: Node | None, st: os.stat_result | None) -> None:
        path = "/" + "/".join(parts)
        secret = self._is_secret(self._secrets, parts)
        live_type = _TYPES.get(stat.S_IFMT(st.st_mode), "special") if st is not None else ""
        if node is None or st is None:
            kind = node.type.value if node is not None else live_type
            if kind == "dir" and not self._dirs_by_presence:
                return  # with includes, a directory is there only as the way to what they take
            self.changes.append(LiveChange("removed" if st is None else "added", path, kind, secret=secret))
            return
        content = self._content_differs(path, node, st, live_type)
        details = _metadata_changes(node, st, self._owners)
        if not content and not details:
            return
        if secret:
            self.changes.append(LiveChange("changed", path, live_type, secret=True))
        elif content:
            as_text = self._text_diffs and node.type is NodeType.FILE and live_type == "file"
            shown = text_diff(self._repo, node, path) if as_text else None
            self.changes.append(LiveChange("content", path, live_type, details, text_diff=shown))
        else:
            self.changes.append(LiveChange("metadata", path, live_type, details))

    def _content_differs(self, path: str, node: Node, st: os.stat_result, live_type: str) -> bool:
        if live_type != node.type.value:
            return True
        if node.type is NodeType.SYMLINK:
            try:
                return os.readlink(path) != node.target
            except OSError:
                return True
        if node.type is not NodeType.FILE:
            return False
        if st.st_size != node.size:
            return True
        try:
            return self._chunk_ids(path, st.st_size) != node.content
        except OSError:
            self.unreadable.append(path)
            return False

    def _chunk_ids(self, path: str, size: int) -> tuple[bytes, ...]:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            return tuple(self._repo.blob_id(bytes(chunk)) for chunk in self._chunker.chunks(handle, size))


TEXT_DIFF_MAX = 1 << 20  # a larger file is named, not shown


def text_diff(repo: Repository, node: Node, path: str) -> tuple[str, ...]:
    """A unified diff from the stored file to the live one; a note instead when either is not
    text (a NUL byte, not UTF-8) or is larger than :data:`TEXT_DIFF_MAX`."""
    import difflib

    if node.size > TEXT_DIFF_MAX:
        return (f"(not shown: the stored file is larger than {TEXT_DIFF_MAX} bytes)",)
    try:
        with open(path, "rb") as handle:
            live = handle.read(TEXT_DIFF_MAX + 1)
    except OSError as exc:
        return (f"(not shown: {exc.strerror})",)
    if len(live) > TEXT_DIFF_MAX:
        return (f"(not shown: the live file is larger than {TEXT_DIFF_MAX} bytes)",)
    stored = b"".join(repo.load_blobs(node.content))
    try:
        if b"\0" in stored or b"\0" in live:
            raise UnicodeDecodeError("utf-8", b"", 0, 1, "binary")
        before, after = stored.decode(), live.decode()
    except UnicodeDecodeError:
        return ("(not shown: binary content)",)
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"snapshot{path}", path
    )
    return tuple(line.rstrip("\n") for line in lines)


def _metadata_changes(node: Node, st: os.stat_result, owners: Any) -> tuple[str, ...]:
    details: list[str] = []
    mode = stat.S_IMODE(st.st_mode)
    if node.type is not NodeType.SYMLINK and mode != node.mode:
        details.append(f"mode {node.mode:04o} -> {mode:04o}")
    if st.st_uid != node.uid:
        details.append(f"owner {_name(node.user, node.uid)} -> {_name(owners.user(st.st_uid), st.st_uid)}")
    if st.st_gid != node.gid:
        details.append(f"group {_name(node.group, node.gid)} -> {_name(owners.group(st.st_gid), st.st_gid)}")
    return tuple(details)


def _name(name: str, number: int) -> str:
    return name or str(number)


__all__ = ["LiveChange", "LiveDiff", "LiveDiffRequest", "live_diff"]
