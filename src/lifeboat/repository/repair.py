"""``repair index``: rebuild the index from the packs alone.

Every pack describes itself in its encrypted trailer, so the index can always be
recovered: read each pack's header, footer and trailer (three small range reads), write
fresh index files, and only then retire the old ones. The last new index file names the
old ones it supersedes, so a reader sees either the old index or the new one.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lifeboat.core.ids import is_hex_id, short
from lifeboat.errors import IntegrityError, StorageError
from lifeboat.repository import layout
from lifeboat.repository.gc import delete_object
from lifeboat.repository.index import MAX_ENTRIES_PER_FILE, IndexedPack, IndexFile
from lifeboat.repository.pack import FOOTER_BYTES, HEADER_BYTES, parse_header, read_trailer, trailer_length
from lifeboat.repository.repo import Repository
from lifeboat.storage.base import ObjectInfo


@dataclass
class RepairResult:
    packs_indexed: int = 0
    blobs_indexed: int = 0
    packs_unreadable: list[str] = field(default_factory=list)
    index_files_written: list[str] = field(default_factory=list)
    index_files_removed: int = 0
    # Superseded old index files the storage refused to delete (an object lock): ignored by
    # every reader, removed by a later repair or prune.
    index_files_not_removed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "packs_indexed": self.packs_indexed,
            "blobs_indexed": self.blobs_indexed,
            "packs_unreadable": self.packs_unreadable,
            "index_files_written": self.index_files_written,
            "index_files_removed": self.index_files_removed,
            "index_files_not_removed": self.index_files_not_removed,
        }


def read_pack_description(repo: Repository, name: str, size: int) -> IndexedPack:
    """A pack's index entry from its header and trailer (no blob is read)."""
    backend = repo.backend
    if size < HEADER_BYTES + FOOTER_BYTES:
        raise IntegrityError("pack is truncated")
    header = backend.get_range(name, 0, HEADER_BYTES)
    length = trailer_length(backend.get_range(name, size - FOOTER_BYTES, FOOTER_BYTES), size)
    trailer = backend.get_range(name, size - FOOTER_BYTES - length, length)
    entries = read_trailer(header, trailer, size, repo.encryption_root)
    salt = parse_header(header, repo.encryption_root).salt
    return IndexedPack(bytes.fromhex(layout.pack_id_of(name)), salt, size, entries)


def rebuild_index(
    repo: Repository, *, workers: int = 4, progress: Callable[[int, int], None] | None = None
) -> RepairResult:
    """Replace every index file with ones rebuilt from the packs. Needs an exclusive lock."""
    result = RepairResult()
    old_ids = repo.index_ids()
    packs = [info for info in repo.backend.list(layout.DATA) if _is_pack_name(info.name)]

    def describe(info: ObjectInfo) -> IndexedPack | str:
        try:
            return read_pack_description(repo, info.name, info.size)
        except (IntegrityError, StorageError) as exc:
            return f"pack {short(layout.pack_id_of(info.name))}: {exc}"

    batch: list[IndexedPack] = []
    done = entries = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for described in pool.map(describe, packs):
            done += 1
            if progress is not None:
                progress(done, len(packs))
            if isinstance(described, str):
                result.packs_unreadable.append(described)
                continue
            batch.append(described)
            result.packs_indexed += 1
            result.blobs_indexed += len(described.entries)
            entries += len(described.entries)
            if entries >= MAX_ENTRIES_PER_FILE:  # a running count: a sum over the batch per pack is quadratic
                result.index_files_written.append(repo.save_index_file(IndexFile(batch)))
                batch, entries = [], 0
    superseding = IndexFile(batch, supersedes=[bytes.fromhex(i) for i in old_ids])
    result.index_files_written.append(repo.save_index_file(superseding))
    for index_id in old_ids:
        deleted = delete_object(repo, layout.index_name(index_id))
        if deleted:
            result.index_files_removed += 1
        elif deleted is False:
            result.index_files_not_removed.append(f"index/{index_id}")
    repo.forget_index()
    return result


def _is_pack_name(name: str) -> bool:
    return is_hex_id(layout.pack_id_of(name))
