"""Turning ``stat`` results into tree nodes (and names of users and groups)."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import threading
from typing import Any

from lifeboat.core.tree import Node, NodeType


class OwnerNames:
    """Caches uid → user name and gid → group name lookups."""

    def __init__(self) -> None:
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}
        self._lock = threading.Lock()

    def user(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            with self._lock:
                try:
                    name = pwd.getpwuid(uid).pw_name
                except KeyError:
                    name = ""
                self._users[uid] = name
        return name

    def group(self, gid: int) -> str:
        name = self._groups.get(gid)
        if name is None:
            with self._lock:
                try:
                    name = grp.getgrgid(gid).gr_name
                except KeyError:
                    name = ""
                self._groups[gid] = name
        return name


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


def node_from_stat(name: str, st: os.stat_result, kind: NodeType, owners: OwnerNames, **fields: Any) -> Node:
    """A node carrying the metadata of ``st`` (content fields are passed by the caller)."""
    if kind is NodeType.FILE:
        fields.setdefault("size", st.st_size)
        fields.setdefault("inode", st.st_ino)
        fields.setdefault("device", st.st_dev)
        fields.setdefault("links", st.st_nlink)
        atime = st.st_atime_ns
    else:
        # A directory's atime changes when it is listed: not stored (Node.to_json).
        atime = st.st_mtime_ns if kind is NodeType.DIR else st.st_atime_ns
    return Node(
        name=name,
        type=kind,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        user=owners.user(st.st_uid),
        group=owners.group(st.st_gid),
        mtime_ns=st.st_mtime_ns,
        atime_ns=atime,
        ctime_ns=st.st_ctime_ns,
        **fields,
    )


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
