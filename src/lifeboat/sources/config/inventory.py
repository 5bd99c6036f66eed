"""The inventory of a configuration backup: every entry's path, type, owner, group, mode, size
and the SHA-256 of its content, and which paths are *secrets*.

It is what an auditor asks of ``/etc`` ("which files, whose, which mode, which content?")
without restoring anything, and what ``verify`` checks the stored files against. It is
stored with the snapshot as its own blob (JSON lines, encrypted like everything else) and
named in the snapshot's record. A secret's checksum is kept too — the inventory is as
secret as the stored file beside it — but no front end ever shows a secret's content or
checksum, only that it changed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass

from lifeboat.core.chunking import Chunker
from lifeboat.core.patterns import PathFilter
from lifeboat.core.progress import Progress
from lifeboat.core.protocols import BlobLoader, BlobSaver
from lifeboat.sources.files.archiver import normalize_paths
from lifeboat.sources.files.metadata import OwnerNames
from lifeboat.sources.stream import store_stream

# Paths whose content is secret unless a source says otherwise (``secrets:``).
SECRET_PATTERNS: tuple[str, ...] = (
    "*.key",
    "*.pem",
    "*.p12",
    "*.pfx",
    ".env",
    ".env.*",
    "*secret*",
    "*password*",
    "*token*",
    "shadow",
    "gshadow",
    "shadow-",
    "gshadow-",
    "id_rsa",
    "id_ecdsa",
    "id_ed25519",
)
_READ = 1 << 20


def secret_filter(patterns: Sequence[str] | None) -> PathFilter:
    """A filter that selects the secret paths (``patterns``, else :data:`SECRET_PATTERNS`)."""
    return PathFilter.build(includes=SECRET_PATTERNS if patterns is None else patterns)


def is_secret(secrets: PathFilter, parts: Sequence[str]) -> bool:
    return bool(secrets.includes) and secrets.selects(parts)


@dataclass(frozen=True)
class InventoryEntry:
    path: str  # absolute
    type: str  # file, dir, symlink, fifo
    owner: str
    group: str
    uid: int
    gid: int
    mode: int
    size: int
    sha256: str | None = None  # regular files
    target: str | None = None  # symlinks
    secret: bool = False

    def to_json(self) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def live_entries(
    paths: Iterable[str], path_filter: PathFilter, *, one_file_system: bool = False
) -> Iterator[tuple[tuple[str, ...], os.stat_result]]:
    """The entries below ``paths`` a backup with ``path_filter`` takes, by path components, in name order."""
    for target in normalize_paths(tuple(paths)):
        try:
            root_dev = os.lstat("/" + "/".join(target)).st_dev
        except OSError:
            continue
        stack = [target]
        while stack:
            parts = stack.pop()
            try:
                st = os.lstat("/" + "/".join(parts))
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if not path_filter.descend(parts):
                    continue
                if path_filter.selects(parts) or parts == target:
                    yield parts, st
                if one_file_system and st.st_dev != root_dev:
                    continue
                try:
                    names = sorted(os.listdir("/" + "/".join(parts)), reverse=True)
                except OSError:
                    continue
                stack.extend((*parts, name) for name in names)
            elif path_filter.selects(parts):
                yield parts, st


def file_sha256(path: str) -> str | None:
    """The SHA-256 of a file's content (None: it cannot be read)."""
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        while piece := os.read(fd, _READ):
            digest.update(piece)
    except OSError:
        return None
    finally:
        os.close(fd)
    return digest.hexdigest()


def entry_of(
    parts: tuple[str, ...], st: os.stat_result, owners: OwnerNames, secrets: PathFilter
) -> InventoryEntry | None:
    path = "/" + "/".join(parts)
    mode = st.st_mode
    kind = (
        "file"
        if stat.S_ISREG(mode)
        else "dir"
        if stat.S_ISDIR(mode)
        else "symlink"
        if stat.S_ISLNK(mode)
        else "fifo"
        if stat.S_ISFIFO(mode)
        else None
    )
    if kind is None:
        return None  # sockets and devices are not backed up
    target: str | None = None
    if kind == "symlink":
        try:
            target = os.readlink(path)
        except OSError:
            target = ""
    return InventoryEntry(
        path=path,
        type=kind,
        owner=owners.user(st.st_uid),
        group=owners.group(st.st_gid),
        uid=st.st_uid,
        gid=st.st_gid,
        mode=stat.S_IMODE(mode),
        size=st.st_size if kind == "file" else 0,
        sha256=file_sha256(path) if kind == "file" else None,
        target=target,
        secret=is_secret(secrets, parts),
    )


def take_inventory(
    paths: Iterable[str], path_filter: PathFilter, secrets: PathFilter, *, one_file_system: bool = False
) -> list[InventoryEntry]:
    owners = OwnerNames()
    found = (
        entry_of(parts, st, owners, secrets)
        for parts, st in live_entries(paths, path_filter, one_file_system=one_file_system)
    )
    return [entry for entry in found if entry is not None]


def encode(entries: Iterable[InventoryEntry]) -> bytes:
    return b"".join(json.dumps(e.to_json(), sort_keys=True).encode() + b"\n" for e in entries)


def store(
    saver: BlobSaver, chunker: Chunker, entries: list[InventoryEntry], patterns: Sequence[str]
) -> dict[str, object]:
    """Store the inventory as blobs; returns the snapshot's record of it."""
    document = encode(entries)
    stored = store_stream(saver, chunker, io.BytesIO(document), Progress())
    return {
        "content": [blob.hex() for blob in stored.content],
        "bytes": stored.size,
        "sha256": hashlib.sha256(document).hexdigest(),
        "entries": len(entries),
        "files": sum(1 for e in entries if e.type == "file"),
        "secrets": sum(1 for e in entries if e.secret),
        "secret_patterns": list(patterns),
    }


def load(loader: BlobLoader, record: dict[str, object]) -> list[InventoryEntry]:
    """The inventory a snapshot's record names (verified reads); ValueError when it is not one."""
    content = record.get("content")
    if not isinstance(content, list):
        raise ValueError("the snapshot's record names no inventory")
    document = b"".join(loader.load_blobs([bytes.fromhex(str(h)) for h in content]))
    if hashlib.sha256(document).hexdigest() != record.get("sha256"):
        raise ValueError("the inventory does not match its recorded checksum")
    return [InventoryEntry(**json.loads(line)) for line in document.splitlines() if line.strip()]
