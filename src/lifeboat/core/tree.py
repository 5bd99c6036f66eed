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


@dataclass(frozen=True, slots=True)
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
        get = doc.get
        try:
            node_type = _NODE_TYPES[doc["type"]]
            name = _check_name(doc["name"])
            ints: dict[str, int] = {}
            for key, low, high in _INT_FIELDS:
                value = get(key, 1 if key == "links" else 0)
                if type(value) is not int or not low <= value <= high:
                    raise ValueError(f"{key} out of range: {value!r}")
                ints[key] = value
            atime = get("atime_ns", ints["mtime_ns"])
            if type(atime) is not int or not _MIN_NS <= atime <= _MAX_NS:
                raise ValueError(f"atime_ns out of range: {atime!r}")
            subtree_hex = get("subtree")
            node = cls(
                name=name,
                type=node_type,
                user=str(get("user", "")),
                group=str(get("group", "")),
                atime_ns=atime,
                content=tuple(_blob_id(h) for h in get("content", ())),
                subtree=_blob_id(subtree_hex) if subtree_hex is not None else None,
                target=str(get("target", "")),
                sparse=bool(get("sparse", False)),
                **ints,
            )
        except KeyError as exc:
            raise IntegrityError(f"malformed tree node: missing or unknown {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise IntegrityError(f"malformed tree node: {exc}") from exc
        if node.type is NodeType.DIR and node.subtree is None:
            raise IntegrityError(f"directory node {name!r} has no subtree")
        if "\x00" in node.target:
            raise IntegrityError(f"symlink node {name!r} has a NUL in its target")
        return node


_NODE_TYPES = {t.value: t for t in NodeType}
_MIN_NS, _MAX_NS = -(2**63), 2**63
_INT_FIELDS = (
    ("mode", 0, 0o7777),
    ("uid", 0, 2**32 - 2),  # a 32-bit id; 2**32 - 1 means "unchanged" to chown, never an owner
    ("gid", 0, 2**32 - 2),
    ("mtime_ns", _MIN_NS, _MAX_NS),
    ("ctime_ns", _MIN_NS, _MAX_NS),
    ("size", 0, 2**63),
    ("inode", 0, 2**64),
    ("device", 0, 2**64),
    ("links", 0, 2**32),
)


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


def _blob_id(value: Any) -> bytes:
    if type(value) is not str or len(value) != 2 * ID_BYTES:
        raise ValueError(f"not a blob id: {value!r}")
    return bytes.fromhex(value)


class ParentEntry:
    """An entry of the parent snapshot, as a backup compares against it.

    A backup looks at every entry of its parent once, to decide whether the file can be
    taken over unread; decoding each into a :class:`Node` would cost more than the walk
    itself. This view keeps the JSON object and validates only what is used, when it is
    used (a blob id that is not 32 bytes of hex still raises :class:`IntegrityError`).
    """

    __slots__ = ("_doc",)

    def __init__(self, doc: dict[str, Any]) -> None:
        self._doc = doc

    @classmethod
    def of(cls, node: Node) -> ParentEntry:
        return cls(node.to_json())

    @property
    def is_file(self) -> bool:
        return self._doc.get("type") == NodeType.FILE.value

    @property
    def subtree(self) -> bytes | None:
        """The tree of a directory entry (None for anything else)."""
        value = self._doc.get("subtree")
        if self._doc.get("type") != NodeType.DIR.value or value is None:
            return None
        return _checked_id(value)

    def same_file(self, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> bool:
        doc = self._doc
        return (
            doc.get("type") == NodeType.FILE.value
            and doc.get("size") == size
            and doc.get("mtime_ns") == mtime_ns
            and doc.get("ctime_ns") == ctime_ns
            and doc.get("inode") == inode
        )

    def same_metadata(
        self, *, mode: int, uid: int, gid: int, user: str, group: str, atime_ns: int, device: int, links: int
    ) -> bool:
        """Whether a file that :meth:`same_file` matched also kept every other recorded field."""
        doc = self._doc
        return (
            doc.get("mode") == mode
            and doc.get("uid") == uid
            and doc.get("gid") == gid
            and doc.get("user", "") == user
            and doc.get("group", "") == group
            and doc.get("atime_ns") == atime_ns
            and doc.get("device") == device
            and doc.get("links") == links
        )

    def matches(self, node: Node) -> bool:
        """Whether ``node`` would be recorded exactly as this entry was."""
        return node.to_json() == self._doc

    @property
    def content(self) -> tuple[bytes, ...]:
        values = self._doc.get("content", ())
        if not isinstance(values, list):
            raise IntegrityError("tree node content is not a list")
        return tuple(_checked_id(v) for v in values)

    @property
    def sparse(self) -> bool:
        return bool(self._doc.get("sparse", False))


def parse_parent_entries(data: bytes) -> dict[str, ParentEntry]:
    """Name → :class:`ParentEntry` of a tree blob, for comparison during a backup."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError("tree blob is not valid JSON") from exc
    if not isinstance(doc, dict) or doc.get("version") != TREE_VERSION or not isinstance(doc.get("nodes"), list):
        raise IntegrityError("tree blob has an unsupported version")
    entries: dict[str, ParentEntry] = {}
    for node in doc["nodes"]:
        if isinstance(node, dict) and isinstance(node.get("name"), str):
            entries[node["name"]] = ParentEntry(node)
    return entries


def _checked_id(value: Any) -> bytes:
    try:
        return _blob_id(value)
    except ValueError as exc:
        raise IntegrityError(f"malformed tree node: {exc}") from exc
