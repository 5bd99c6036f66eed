"""Human renderings shared by several commands."""

from __future__ import annotations

import stat as stat_module
from datetime import datetime

from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Node, NodeType
from lifeboat.core.units import format_bytes, format_duration

_TYPE_CHAR = {NodeType.DIR: "d", NodeType.SYMLINK: "l", NodeType.FIFO: "p", NodeType.FILE: "-"}


def local_time(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def snapshot_row(snapshot: Snapshot) -> list[str]:
    size = snapshot.summary.get("bytes_total")
    return [
        snapshot.short_id,
        local_time(snapshot.time),
        snapshot.hostname,
        snapshot.kind,
        snapshot.source,
        ",".join(snapshot.tags),
        format_bytes(size) if isinstance(size, int) else "",
    ]


SNAPSHOT_HEADERS = ["ID", "Time", "Host", "Kind", "Source", "Tags", "Size"]


def long_listing(path: str, node: Node) -> str:
    mode = _TYPE_CHAR[node.type] + stat_module.filemode(node.mode | stat_module.S_IFREG)[1:]
    owner = f"{node.user or node.uid}:{node.group or node.gid}"
    size = str(node.size) if node.type is NodeType.FILE else ""
    mtime = local_time(datetime.fromtimestamp(node.mtime_ns / 1e9).astimezone())
    suffix = f" -> {node.target}" if node.type is NodeType.SYMLINK else ""
    return f"{mode} {owner:>15} {size:>12} {mtime} {path}{suffix}"


def backup_summary(summary: dict[str, object], snapshot: Snapshot) -> list[str]:
    def num(key: str) -> int:
        value = summary.get(key, 0)
        return value if isinstance(value, int) else 0

    return [
        f"Files: {num('files_new')} new, {num('files_changed')} changed, {num('files_unmodified')} unmodified"
        f" ({num('dirs')} directories)",
        f"Processed {format_bytes(num('bytes_total'))}; added {format_bytes(num('bytes_new'))} of new data,"
        f" stored {format_bytes(num('bytes_stored'))} in {num('packs_written')} packs",
        f"Snapshot {snapshot.short_id} saved in {format_duration(float(str(summary.get('duration_seconds', 0))))}",
    ]
