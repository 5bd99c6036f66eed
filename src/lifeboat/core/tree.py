"""Tree records: one directory's entries, the unit of the snapshot's file hierarchy.

A tree is serialised as canonical JSON (sorted keys, nodes sorted by name) and stored as
a blob, so an unchanged directory deduplicates to the same tree blob. Decoding is strict:
a node name must be a single path component, so a hostile tree cannot make a restore
write outside its target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lifeboat.core.ids import ID_BYTES
from lifeboat.errors import IntegrityError

TREE_VERSION = 1


class NodeType(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    FIFO = "fifo"


@dataclass(frozen=True)
class Node:
    """One directory entry and its metadata."""

    name: str
    type: NodeType
    mode: int = 0o644  # permission bits, including setuid/setgid/sticky
    uid: int = 0
    gid: int = 0
    user: str = ""
    group: str = ""
    mtime_ns: int = 0
    atime_ns: int = 0
    ctime_ns: int = 0
    size: int = 0
    inode: int = 0
    device: int = 0
    links: int = 1
    content: tuple[bytes, ...] = ()  # data blob ids, in order (files)
    subtree: bytes | None = None  # tree blob id (directories)
    target: str = ""  # link target (symlinks)
    sparse: bool = False

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "type": self.type.value,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
            "mtime_ns": self.mtime_ns,
            "ctime_ns": self.ctime_ns,
        }
        # A directory's atime changes whenever it is listed: not stored, so unchanged
        # directories keep deduplicating to the same tree blob.
        if self.type is not NodeType.DIR:
            doc["atime_ns"] = self.atime_ns
        if self.user:
            doc["user"] = self.user
        if self.group:
            doc["group"] = self.group
        if self.type is NodeType.FILE:
            doc["size"] = self.size
            doc["content"] = [blob.hex() for blob in self.content]
            doc["inode"] = self.inode
            doc["device"] = self.device
            doc["links"] = self.links
            if self.sparse:
                doc["sparse"] = True
        elif self.type is NodeType.DIR:
            doc["subtree"] = self.subtree.hex() if self.subtree is not None else None
        elif self.type is NodeType.SYMLINK:
            doc["target"] = self.target
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> Node:
        if not isinstance(doc, dict):
            raise IntegrityError("tree node is not an object")
        try:
            node_type = NodeType(doc["type"])
            name = _check_name(doc["name"])
            subtree_hex = doc.get("subtree")
            node = cls(
                name=name,
                type=node_type,
                mode=_int(doc.get("mode", 0), 0, 0o7777),
                uid=_int(doc.get("uid", 0), 0, 2**32),
                gid=_int(doc.get("gid", 0), 0, 2**32),
                user=str(doc.get("user", "")),
                group=str(doc.get("group", "")),
                mtime_ns=_int(doc.get("mtime_ns", 0), -(2**63), 2**63),
                atime_ns=_int(doc.get("atime_ns", doc.get("mtime_ns", 0)), -(2**63), 2**63),
                ctime_ns=_int(doc.get("ctime_ns", 0), -(2**63), 2**63),
                size=_int(doc.get("size", 0), 0, 2**63),
                inode=_int(doc.get("inode", 0), 0, 2**64),
                device=_int(doc.get("device", 0), 0, 2**64),
                links=_int(doc.get("links", 1), 0, 2**32),
                content=tuple(_blob_id(h) for h in doc.get("content", [])),
                subtree=_blob_id(subtree_hex) if subtree_hex is not None else None,
                target=str(doc.get("target", "")),
                sparse=bool(doc.get("sparse", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"malformed tree node: {exc}") from exc
        if node.type is NodeType.DIR and node.subtree is None:
            raise IntegrityError(f"directory node {name!r} has no subtree")
        if "\x00" in node.target:
            raise IntegrityError(f"symlink node {name!r} has a NUL in its target")
        return node


@dataclass(frozen=True)
class Tree:
    """The entries of one directory, sorted by name."""

    nodes: tuple[Node, ...] = field(default_factory=tuple)

    def encode(self) -> bytes:
        nodes = sorted(self.nodes, key=lambda n: n.name)
        doc = {"version": TREE_VERSION, "nodes": [n.to_json() for n in nodes]}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> Tree:
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise IntegrityError("tree blob is not valid JSON") from exc
        if not isinstance(doc, dict) or doc.get("version") != TREE_VERSION:
            raise IntegrityError("tree blob has an unsupported version")
        raw_nodes = doc.get("nodes")
        if not isinstance(raw_nodes, list):
            raise IntegrityError("tree blob has no node list")
        nodes = tuple(Node.from_json(n) for n in raw_nodes)
        names = [n.name for n in nodes]
        if len(set(names)) != len(names):
            raise IntegrityError("tree blob names one entry twice")
        return cls(nodes)

    def get(self, name: str) -> Node | None:
        for node in self.nodes:
            if node.name == name:
                return node
        return None


def _check_name(value: Any) -> str:
    """A node name is one path component: no separators, no '.', '..', NUL or empty."""
    if not isinstance(value, str) or value in ("", ".", "..") or "/" in value or "\x00" in value:
        raise IntegrityError(f"tree node has an unsafe name {value!r}")
    return value


def _int(value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"integer out of range: {value!r}")
    return value


def _blob_id(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * ID_BYTES:
        raise ValueError(f"not a blob id: {value!r}")
    return bytes.fromhex(value)
