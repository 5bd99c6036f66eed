"""Where each kind of object lives in the storage namespace."""

from __future__ import annotations

HEADER = "config"
KEYS = "keys/"
DATA = "data/"
INDEX = "index/"
SNAPSHOTS = "snapshots/"
LOCKS = "locks/"
RECORDS = "records/"
BUNDLES = "bundles/"


def pack_name(pack_id: str) -> str:
    return f"{DATA}{pack_id[:2]}/{pack_id}"


def pack_id_of(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def index_name(index_id: str) -> str:
    return f"{INDEX}{index_id}"


def snapshot_name(snapshot_id: str) -> str:
    return f"{SNAPSHOTS}{snapshot_id}"


def key_name(key_id: str) -> str:
    return f"{KEYS}{key_id}"


def lock_name(lock_id: str) -> str:
    return f"{LOCKS}{lock_id}"


def record_name(record_id: str) -> str:
    return f"{RECORDS}{record_id}"


def bundle_name(bundle_id: str) -> str:
    return f"{BUNDLES}{bundle_id}"
