"""Turning ``stat`` results into tree nodes (and names of users and groups)."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import threading

from lifeboat.core.tree import Node, NodeType


class OwnerNames:
    """Caches uid → user name and gid → group name lookups."""

    def __init__(self) -> None:
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}
        self._lock = threading.Lock()

    def user(self, uid: int) -> str:
        with self._lock:
            if uid not in self._users:
                try:
                    self._users[uid] = pwd.getpwuid(uid).pw_name
                except KeyError:
                    self._users[uid] = ""
            return self._users[uid]

    def group(self, gid: int) -> str:
        with self._lock:
            if gid not in self._groups:
                try:
                    self._groups[gid] = grp.getgrgid(gid).gr_name
                except KeyError:
                    self._groups[gid] = ""
            return self._groups[gid]


def node_type(st: os.stat_result) -> NodeType | None:
    """The node type for a stat result, or None for what is not backed up (sockets, devices)."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return NodeType.FILE
    if stat.S_ISDIR(mode):
        return NodeType.DIR
    if stat.S_ISLNK(mode):
        return NodeType.SYMLINK
    if stat.S_ISFIFO(mode):
        return NodeType.FIFO
    return None


def describe_special(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def node_from_stat(name: str, st: os.stat_result, kind: NodeType, owners: OwnerNames, **fields: object) -> Node:
    """A node carrying the metadata of ``st`` (content fields are passed by the caller)."""
    base = {
        "name": name,
        "type": kind,
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "user": owners.user(st.st_uid),
        "group": owners.group(st.st_gid),
        "mtime_ns": st.st_mtime_ns,
        "atime_ns": st.st_atime_ns,
        "ctime_ns": st.st_ctime_ns,
    }
    if kind is NodeType.FILE:
        base.update(size=st.st_size, inode=st.st_ino, device=st.st_dev, links=st.st_nlink)
    elif kind is NodeType.DIR:
        base.update(atime_ns=st.st_mtime_ns)  # listing changes atime: not stored (Node.to_json)
    base.update(fields)
    return Node(**base)  # type: ignore[arg-type]


def is_sparse(st: os.stat_result) -> bool:
    """True when the file occupies fewer blocks than its length needs."""
    return st.st_size > 0 and st.st_blocks * 512 < st.st_size


def unchanged(previous: Node | None, st: os.stat_result) -> bool:
    """Whether a file is the same as ``previous`` by size, mtime, ctime and inode."""
    return (
        previous is not None
        and previous.type is NodeType.FILE
        and previous.size == st.st_size
        and previous.mtime_ns == st.st_mtime_ns
        and previous.ctime_ns == st.st_ctime_ns
        and previous.inode == st.st_ino
    )
