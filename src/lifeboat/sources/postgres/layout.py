"""What a physical base backup takes from a data directory, and how it cuts it (pure).

Left out, as pg_basebackup leaves them out: the contents of ``pg_wal`` (WAL comes from
the archive), of ``pg_replslot``, ``pg_dynshmem``, ``pg_notify``, ``pg_serial``,
``pg_snapshots``, ``pg_stat_tmp`` and ``pg_subtrans`` (the directories are kept), the
pid and option files, an old ``backup_label``/``tablespace_map``, recovery signal files,
``pg_internal.init`` caches, ``pgsql_tmp*`` temporary files, and Lifeboat's own spool.

Relation files (``base/<db>/<relfilenode>[_fsm|_vm|_init][.N]``, ``global/…`` and the
same below a tablespace's ``PG_<version>_<catversion>/``) are cut into fixed, page-aligned
blocks, so a changed page costs one block; their pages can be checksum-verified.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lifeboat.core.patterns import PathFilter

SPOOL_DIR_NAME = "lifeboat_spool"
CONTENTS_EXCLUDED = (
    "pg_wal",
    "pg_replslot",
    "pg_dynshmem",
    "pg_notify",
    "pg_serial",
    "pg_snapshots",
    "pg_stat_tmp",
    "pg_subtrans",
)
FILES_EXCLUDED = (
    "postmaster.pid",
    "postmaster.opts",
    "backup_label",
    "backup_label.old",
    "tablespace_map",
    "tablespace_map.old",
    "recovery.signal",
    "standby.signal",
    "current_logfiles",
    SPOOL_DIR_NAME,
)
ANYWHERE_EXCLUDED = ("pg_internal.init", "pgsql_tmp*")
_RELATION_RE = re.compile(r"^(\d+)(?:_(fsm|vm|init))?(?:\.(\d+))?$")


def exclude_patterns(data_dir: str) -> list[str]:
    """The exclusions as patterns (docs/cli.md syntax), anchored at ``data_dir``."""
    root = glob.escape(data_dir.rstrip("/"))
    patterns = [f"{root}/{name}/*" for name in CONTENTS_EXCLUDED]
    patterns += [f"{root}/{name}" for name in FILES_EXCLUDED]
    patterns += list(ANYWHERE_EXCLUDED)
    return patterns


@dataclass(frozen=True)
class BaseBackupFilter(PathFilter):
    """The exclusions of :func:`exclude_patterns`, decided by exact name lookups.

    Equivalent to ``PathFilter.build((), exclude_patterns(data_dir))`` for the paths the
    archiver asks about, but without matching twenty glob patterns against every prefix
    of every path (which cost seconds per thousand files).
    """

    root: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return False

    def excluded(self, path: Sequence[str]) -> bool:
        if any(part == "pg_internal.init" or part.startswith("pgsql_tmp") for part in path):
            return True
        depth = len(self.root)
        if len(path) <= depth or tuple(path[:depth]) != self.root:
            return False
        top = path[depth]
        return top in FILES_EXCLUDED or (top in CONTENTS_EXCLUDED and len(path) > depth + 1)

    def selects(self, path: Sequence[str]) -> bool:
        return not self.excluded(path)

    def descend(self, path: Sequence[str]) -> bool:
        return not self.excluded(path)


def backup_filter(data_dir: str) -> PathFilter:
    return BaseBackupFilter(root=tuple(p for p in data_dir.split("/") if p))


def relation_segment(name: str) -> int | None:
    """The segment number of a relation file name (``16384.2`` → 2), or None if not one."""
    match = _RELATION_RE.match(name)
    if not match:
        return None
    return int(match.group(3) or 0)


def is_relation_path(parts: Sequence[str], roots: Sequence[tuple[str, ...]]) -> bool:
    """Whether ``parts`` is a relation file below one of ``roots`` (data dir or tablespace dirs).

    Below the data directory: ``base/<db>/<file>`` and ``global/<file>``; below a
    tablespace location: ``PG_<...>/<db>/<file>``.
    """
    if not parts or relation_segment(parts[-1]) is None:
        return False
    for root in roots:
        if tuple(parts[: len(root)]) != root:
            continue
        rest = parts[len(root) :]
        if len(rest) == 3 and rest[0] == "base" and rest[1].isdigit():
            return True
        if len(rest) == 2 and rest[0] == "global":
            return True
        if len(rest) == 3 and rest[0].startswith("PG_") and rest[1].isdigit():
            return True
    return False


def first_block(name: str, relation_segment_size: int, page_size: int) -> int:
    """The block number of the first page in relation file ``name`` (segments continue numbering)."""
    segment = relation_segment(name) or 0
    return segment * (relation_segment_size // page_size)
