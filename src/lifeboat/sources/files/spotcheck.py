"""Spot check of a files snapshot against the live files (``verify --spot-check N``).

Structure and read-back prove the stored bytes are what was stored; they cannot see a file a
backup never stored. The spot check looks from the other side: a random sample of the
regular files that live under the snapshot's paths now, and that have not been modified
since the snapshot was taken (mtime older than the snapshot's time), must be in the snapshot
with the same size and the same content (read back through the verified loader and compared
byte for byte). A file missing from the snapshot, or stored with other content, is a backup
that silently misses data.

What the configured source excludes is not sampled (its include/exclude patterns). A file
whose mtime was set back after the snapshot (``cp -p``, ``tar x``, ``rsync -t``) looks
unchanged to this rule; the message says what was seen so a person can tell. The walk that
gathers the sample stops after :data:`MAX_WALKED` files (the sample is then taken from those).
"""

from __future__ import annotations

import os
import random
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lifeboat.core.patterns import PathFilter
from lifeboat.core.protocols import BlobLoader
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import NodeType
from lifeboat.core.treewalk import find
from lifeboat.errors import IntegrityError, StorageError
from lifeboat.sources.files.archiver import normalize_paths

MAX_WALKED = 200_000
READ = 1024 * 1024


@dataclass
class SpotCheck:
    """What comparing a sample of live files with a snapshot found."""

    sampled: int = 0  # files compared
    eligible: int = 0  # live files unchanged since the snapshot (the sample's population)
    missing: list[str] = field(default_factory=list)  # live, unchanged, not in the snapshot
    differing: list[str] = field(default_factory=list)  # in the snapshot with another size or content
    unreadable: list[str] = field(default_factory=list)  # the live file or its stored data could not be read
    skipped: str = ""  # why nothing was sampled ("" when the check ran)

    @property
    def problems(self) -> list[str]:
        differ = "stored with other content than the live file, unchanged since the snapshot"
        return (
            [f"{m}: on this host and unchanged since the snapshot, but not in it" for m in self.missing]
            + [f"{d}: {differ}" for d in self.differing]
            + list(self.unreadable)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "sampled": self.sampled,
            "eligible": self.eligible,
            "missing": self.missing,
            "differing": self.differing,
            "unreadable": self.unreadable,
            "skipped": self.skipped or None,
        }


def spot_check(
    loader: BlobLoader,
    snapshot: Snapshot,
    count: int,
    *,
    path_filter: PathFilter | None = None,
    hostname: str | None = None,
    rng: random.Random | None = None,
    check: Callable[[], None] = lambda: None,
) -> SpotCheck:
    """Compare ``count`` live files, sampled at random, with ``snapshot`` (unless the snapshot
    was taken on another host than ``hostname``: its files are not these)."""
    result = SpotCheck()
    if hostname and snapshot.hostname and snapshot.hostname != hostname:
        result.skipped = f"the snapshot was taken on {snapshot.hostname}, not on this host"
        return result
    roots = [t for t in normalize_paths(snapshot.paths) if os.path.lexists("/" + "/".join(t))]
    if not roots:
        result.skipped = "the snapshot's paths are not on this host"
        return result
    taken = snapshot.time.timestamp()
    sample = _sample(roots, path_filter or PathFilter(), taken, count, rng or random.Random(), result, check)  # noqa: S311
    for parts, st in sample:
        check()
        result.sampled += 1
        _compare(loader, snapshot, parts, st, result)
    return result


def _sample(
    roots: list[tuple[str, ...]],
    path_filter: PathFilter,
    taken: float,
    count: int,
    rng: random.Random,
    result: SpotCheck,
    check: Callable[[], None],
) -> list[tuple[tuple[str, ...], os.stat_result]]:
    """A uniform sample (reservoir) of the regular files under ``roots`` modified before ``taken``."""
    sample: list[tuple[tuple[str, ...], os.stat_result]] = []
    walked = 0
    stack = list(roots)
    while stack and walked < MAX_WALKED:
        parts = stack.pop()
        path = "/" + "/".join(parts)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if parts in roots or path_filter.descend(parts):
                try:
                    with os.scandir(path) as listing:
                        stack.extend((*parts, entry.name) for entry in listing)
                except OSError:
                    continue
            continue
        if not stat.S_ISREG(st.st_mode) or (parts not in roots and not path_filter.selects(parts)):
            continue
        walked += 1
        if walked % 1024 == 0:
            check()
        if st.st_mtime >= taken:
            continue  # changed since the snapshot: it may rightly differ
        result.eligible += 1
        if len(sample) < count:
            sample.append((parts, st))
        else:
            slot = rng.randrange(result.eligible)
            if slot < count:
                sample[slot] = (parts, st)
    return sample


def _compare(
    loader: BlobLoader, snapshot: Snapshot, parts: tuple[str, ...], st: os.stat_result, result: SpotCheck
) -> None:
    path = "/" + "/".join(parts)
    modified = datetime.fromtimestamp(st.st_mtime, UTC).isoformat(timespec="seconds")
    try:
        node = find(loader, snapshot.tree, "/".join(parts))
    except (IntegrityError, StorageError) as exc:
        result.unreadable.append(f"{path}: the snapshot's tree cannot be read: {exc}")
        return
    if node is None or node.type is not NodeType.FILE:
        result.missing.append(f"{path} ({st.st_size} bytes, modified {modified})")
        return
    if node.size != st.st_size:
        result.differing.append(f"{path} ({st.st_size} bytes live, {node.size} stored, modified {modified})")
        return
    try:
        same = _same_content(loader, node.content, path)
    except OSError as exc:
        result.unreadable.append(f"{path}: cannot be read on this host: {exc.strerror}")
        return
    except (IntegrityError, StorageError) as exc:
        result.unreadable.append(f"{path}: its stored data cannot be read: {exc}")
        return
    if not same:
        result.differing.append(f"{path} ({st.st_size} bytes, modified {modified})")


def _same_content(loader: BlobLoader, blobs: tuple[bytes, ...], path: str) -> bool:
    """Whether the live file holds exactly the stored blobs' bytes, in order."""
    with open(path, "rb") as live:
        for data in loader.load_blobs(blobs):
            if live.read(len(data)) != data:
                return False
        return live.read(1) == b""
