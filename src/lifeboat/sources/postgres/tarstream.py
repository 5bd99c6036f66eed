"""Turning pg_basebackup's tar stream into a snapshot tree, as it streams.

``pg_basebackup -Ft -D - -X fetch`` writes one tar archive of the data directory (with
``backup_label``, ``backup_manifest`` and the WAL needed for consistency in ``pg_wal/``).
Each member is stored as it arrives — relation files in fixed page-aligned blocks, the
rest content-defined — and the directory trees are saved once the stream ends, deepest
first. Nothing is written to local disk.
"""

from __future__ import annotations

import stat
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import IO

from lifeboat.core.chunking import Chunker, fixed_chunks
from lifeboat.core.progress import Progress
from lifeboat.core.protocols import BlobSaver
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.errors import IntegrityError, PostgresError
from lifeboat.sources.postgres.layout import SPOOL_DIR_NAME
from lifeboat.sources.stream import store_chunks

KEEP_TEXT = ("backup_label", "backup_manifest", "tablespace_map")


@dataclass
class TarTree:
    """The data directory's tree and the small files a restore and the catalogue need."""

    tree: bytes = b""
    files: int = 0
    dirs: int = 0
    bytes_total: int = 0
    texts: dict[str, bytes] = field(default_factory=dict)
    root_uid: int = 0
    root_gid: int = 0


class TarTreeBuilder:
    """Stores the members of a tar stream and builds the directory trees."""

    def __init__(
        self,
        saver: BlobSaver,
        chunker: Chunker,
        *,
        block_size_for: Callable[[tuple[str, ...]], int],
        progress: Progress | None = None,
        cancel: Callable[[], None] | None = None,
    ) -> None:
        self._saver = saver
        self._cancel = cancel
        self._chunker = chunker
        self._block_size_for = block_size_for
        self.progress = progress or Progress()
        self._children: dict[tuple[str, ...], dict[str, Node]] = {(): {}}
        self._dirs: dict[tuple[str, ...], Node] = {}
        self.result = TarTree()
        self._owner_known = False

    def _parts(self, name: str) -> tuple[str, ...]:
        parts = tuple(p for p in name.split("/") if p and p != ".")
        if any(p == ".." for p in parts):
            raise IntegrityError(f"pg_basebackup sent an unsafe path {name!r}")
        return parts

    def _ensure_parents(self, parts: tuple[str, ...]) -> None:
        for depth in range(len(parts)):
            self._children.setdefault(parts[:depth], {})

    def _node(self, info: tarfile.TarInfo, name: str, kind: NodeType, **fields: object) -> Node:
        mtime_ns = int(info.mtime * 1_000_000_000)
        return Node(
            name=name,
            type=kind,
            mode=stat.S_IMODE(info.mode),
            uid=info.uid,
            gid=info.gid,
            user=info.uname,
            group=info.gname,
            mtime_ns=mtime_ns,
            atime_ns=mtime_ns,
            ctime_ns=mtime_ns,
            **fields,  # type: ignore[arg-type]
        )

    def _store(self, stream: IO[bytes], parts: tuple[str, ...]) -> tuple[tuple[bytes, ...], int, bytes]:
        block = self._block_size_for(parts)
        keep = parts[-1] in KEEP_TEXT and len(parts) == 1
        kept: list[bytes] = []
        pieces = fixed_chunks(stream, block) if block else self._chunker.chunks(stream)  # type: ignore[arg-type]
        stored = store_chunks(
            self._saver, pieces, self.progress, cancel=self._cancel, on_chunk=kept.append if keep else None
        )
        return stored.content, stored.size, b"".join(kept)

    def consume(self, stream: IO[bytes]) -> TarTree:
        try:
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                for info in archive:
                    self._member(archive, info)
        except tarfile.TarError as exc:
            raise PostgresError(f"the tar stream from pg_basebackup is damaged or not a tar archive: {exc}") from None
        return self._finish()

    def _member(self, archive: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        parts = self._parts(info.name)
        if not parts or not self._owner_known:
            # The data directory belongs to whoever owns its files (tar has no entry for it).
            self.result.root_uid, self.result.root_gid = info.uid, info.gid
            self._owner_known = True
        if not parts:
            return
        if parts[0] == SPOOL_DIR_NAME:
            return
        self._ensure_parents(parts)
        name = parts[-1]
        if info.isdir():
            self._dirs[parts] = self._node(info, name, NodeType.DIR)
            self._children.setdefault(parts, {})
            return
        if info.issym():
            self._children[parts[:-1]][name] = self._node(info, name, NodeType.SYMLINK, target=info.linkname)
            return
        if not info.isfile():
            return
        extracted = archive.extractfile(info)
        if extracted is None:
            return
        content, size, text = self._store(extracted, parts)
        if size != info.size:
            raise PostgresError(f"pg_basebackup sent {size} of {info.size} bytes of {info.name}")
        if text:
            self.result.texts[name] = text
        self._children[parts[:-1]][name] = self._node(info, name, NodeType.FILE, size=size, content=content)
        self.result.files += 1
        self.result.bytes_total += size
        self.progress.file_done()

    def _finish(self) -> TarTree:
        now = time.time_ns()
        for path in sorted(self._children, key=len, reverse=True):
            if not path:
                continue
            tree_id = self._saver.save_tree(Tree(tuple(self._children[path].values())))
            node = self._dirs.get(path) or Node(
                name=path[-1], type=NodeType.DIR, mode=0o700, mtime_ns=now, atime_ns=now, ctime_ns=now
            )
            self._children.setdefault(path[:-1], {})[path[-1]] = replace(node, subtree=tree_id)
            self.result.dirs += 1
        self.result.tree = self._saver.save_tree(Tree(tuple(self._children[()].values())))
        return self.result
