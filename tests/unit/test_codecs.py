"""Every encoder/decoder of the format round-trips, and rejects what it did not write."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeboat.core.ids import BlobType
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.errors import IntegrityError
from lifeboat.repository.compression import Compressor, decompress
from lifeboat.repository.crypto.aead import ObjectCipher, ObjectKind, PackCipher, offset_nonce
from lifeboat.repository.header import ChunkerParams, RepositoryHeader
from lifeboat.repository.index import IndexedPack, IndexFile
from lifeboat.repository.lock import LockRecord
from lifeboat.repository.pack import PackEntry, PackWriter, decode_trailer, encode_trailer, read_pack_entries

ids = st.binary(min_size=32, max_size=32)
u32 = st.integers(min_value=0, max_value=2**32 - 1)
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=40
).filter(lambda s: s not in (".", ".."))
times_ns = st.integers(min_value=-(2**62), max_value=2**62)


@st.composite
def nodes(draw: st.DrawFn) -> Node:
    kind = draw(st.sampled_from(list(NodeType)))
    mtime = draw(times_ns)
    node = Node(
        name=draw(names),
        type=kind,
        mode=draw(st.integers(0, 0o7777)),
        uid=draw(st.integers(0, 2**31)),
        gid=draw(st.integers(0, 2**31)),
        user=draw(st.text(max_size=10)),
        group=draw(st.text(max_size=10)),
        mtime_ns=mtime,
        atime_ns=mtime if kind is NodeType.DIR else draw(times_ns),
        ctime_ns=draw(times_ns),
    )
    if kind is NodeType.FILE:
        return replace(
            node,
            size=draw(st.integers(0, 2**40)),
            inode=draw(st.integers(0, 2**63)),
            device=draw(st.integers(0, 2**63)),
            links=draw(st.integers(1, 100)),
            content=tuple(draw(st.lists(ids, max_size=5))),
            sparse=draw(st.booleans()),
        )
    if kind is NodeType.DIR:
        return replace(node, subtree=draw(ids))
    if kind is NodeType.SYMLINK:
        return replace(node, target=draw(st.text(max_size=50).filter(lambda t: "\x00" not in t)))
    return node


@given(st.lists(nodes(), max_size=12, unique_by=lambda n: n.name))
def test_tree_round_trips(node_list: list[Node]) -> None:
    tree = Tree(tuple(node_list))
    decoded = Tree.decode(tree.encode())
    assert sorted(decoded.nodes, key=lambda n: n.name) == sorted(node_list, key=lambda n: n.name)


@given(st.lists(nodes(), max_size=6, unique_by=lambda n: n.name))
def test_tree_encoding_is_canonical(node_list: list[Node]) -> None:
    assert Tree(tuple(node_list)).encode() == Tree(tuple(reversed(node_list))).encode()


@pytest.mark.parametrize("bad", ["..", ".", "", "a/b", "/etc", "x\x00y"])
def test_tree_refuses_unsafe_names(bad: str) -> None:
    doc = {"version": 1, "nodes": [{"name": bad, "type": "file", "mode": 420, "content": []}]}
    with pytest.raises(IntegrityError, match="unsafe name"):
        Tree.decode(json.dumps(doc).encode())


def test_tree_refuses_duplicate_names() -> None:
    entry = {"name": "a", "type": "file", "mode": 420, "content": []}
    with pytest.raises(IntegrityError, match="twice"):
        Tree.decode(json.dumps({"version": 1, "nodes": [entry, entry]}).encode())


@pytest.mark.parametrize("garbage", [b"", b"{", b"[]", b'{"version": 2, "nodes": []}', b"\xff\xfe"])
def test_tree_garbage_is_an_integrity_error(garbage: bytes) -> None:
    with pytest.raises(IntegrityError):
        Tree.decode(garbage)


@given(
    source=st.text(max_size=30),
    kind=st.sampled_from(["files", "stdin", "postgres"]),
    tree=ids,
    seconds=st.integers(0, 2**33),
    tags=st.lists(st.text(max_size=8), max_size=4),
    paths=st.lists(st.text(max_size=20), max_size=4),
    extra=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4),
)
def test_snapshot_round_trips(
    source: str, kind: str, tree: bytes, seconds: int, tags: list[str], paths: list[str], extra: dict[str, object]
) -> None:
    snap = Snapshot(
        time=datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=7),
        source=source,
        kind=kind,
        tree=tree,
        hostname="h",
        tags=tuple(sorted(tags)),
        paths=tuple(paths),
        extra=extra,
        summary={"files_new": 3},
    )
    decoded = Snapshot.decode(snap.encode(), "ab" * 32)
    assert decoded == snap.with_id("ab" * 32)


@pytest.mark.parametrize("garbage", [b"", b"null", b"{}", b'{"version": 1}', b'{"version": 1, "tree": "zz"}'])
def test_snapshot_garbage_is_an_integrity_error(garbage: bytes) -> None:
    with pytest.raises(IntegrityError):
        Snapshot.decode(garbage, "cd" * 32)


entries = st.builds(
    PackEntry,
    type=st.sampled_from(list(BlobType)),
    id=ids,
    offset=u32,
    length=u32,
    raw_length=u32,
)


@given(st.lists(st.tuples(st.sampled_from(list(BlobType)), ids, st.integers(17, 5000), u32), max_size=20))
def test_pack_trailer_round_trips(specs: list[tuple[BlobType, bytes, int, int]]) -> None:
    offset = 24
    entry_list = []
    for blob_type, blob_id, length, raw in specs:
        entry_list.append(PackEntry(blob_type, blob_id, offset, length, raw))
        offset += length
    assert decode_trailer(encode_trailer(entry_list), body_end=offset) == entry_list


def test_pack_trailer_refuses_entries_outside_the_pack() -> None:
    trailer = encode_trailer([PackEntry(BlobType.DATA, b"x" * 32, 24, 100, 100)])
    with pytest.raises(IntegrityError, match="outside"):
        decode_trailer(trailer, body_end=50)


@settings(max_examples=30)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=10))
def test_pack_writer_output_describes_itself(blobs: list[bytes]) -> None:
    root = b"r" * 32
    writer = PackWriter(root)
    compressor = Compressor()
    for i, blob in enumerate(blobs):
        writer.add(BlobType.DATA, i.to_bytes(32, "big"), compressor.payload(blob), len(blob))
    _, data = writer.finish()
    assert read_pack_entries(bytes(data), root) == writer.entries
    with pytest.raises(IntegrityError):
        read_pack_entries(bytes(data), b"k" * 32)  # another repository's key


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 200, 70_000, 300_000]), min_size=1, max_size=8), st.integers(0, 2**32))
def test_each_blob_of_a_pack_opens_to_its_payload_as_a_joined_encryption_would(sizes: list[int], seed: int) -> None:
    # The writer seals codec byte and body in one GCM stream into a buffer it reuses, never joining
    # them: each ciphertext must be AES-GCM's over that blob's joined payload, larger or smaller
    # than the last, so readers (and older versions) open it as before.
    root = b"r" * 32
    rng = random.Random(seed)
    writer = PackWriter(root)
    compressor = Compressor()
    blobs = [rng.randbytes(size // 2) * 2 if size % 3 else rng.randbytes(size) for size in sizes]
    payloads = [compressor.payload(blob) for blob in blobs]
    for i, (blob, payload) in enumerate(zip(blobs, payloads, strict=True)):
        writer.add(BlobType.DATA, i.to_bytes(32, "big"), payload, len(blob))
    _, data = writer.finish()
    cipher = PackCipher(root, writer.salt)
    for i, (entry, blob, payload) in enumerate(zip(writer.entries, blobs, payloads, strict=True)):
        sealed = bytes(data[entry.offset : entry.offset + entry.length])
        joined = payload.joined()
        assert sealed == cipher._aead.encrypt(
            offset_nonce(entry.offset), joined, PackCipher.blob_aad(BlobType.DATA, entry.id)
        )
        assert cipher.open_blob(entry.offset, BlobType.DATA, i.to_bytes(32, "big"), sealed) == joined
        assert decompress(joined, len(blob)) == blob


def test_a_compression_context_holds_a_small_window() -> None:
    # Every pack worker keeps a zstd context: with level 3's own 2 MiB window it held 3.5 MiB
    # after a 2 MiB chunk; the 512 KiB window keeps it at 2 MiB.
    compressor = Compressor(3)
    blob = random.Random(3).randbytes(64 * 1024) * 32
    assert decompress(compressor.compress(blob), len(blob)) == blob
    assert compressor._zstd().memory_size() <= 2_200_000


@given(
    st.lists(
        st.tuples(ids, st.binary(min_size=16, max_size=16), st.integers(0, 2**40), st.lists(entries, max_size=5)),
        max_size=5,
    ),
    st.lists(ids, max_size=3),
)
def test_index_file_round_trips(
    packs: list[tuple[bytes, bytes, int, list[PackEntry]]], supersedes: list[bytes]
) -> None:
    index = IndexFile(
        [IndexedPack(pid, salt, size + 2**33, ents) for pid, salt, size, ents in packs], supersedes=supersedes
    )
    assert IndexFile.decode(index.encode()) == index


@pytest.mark.parametrize("cut", [0, 1, 5, 40])
def test_truncated_index_file_is_an_integrity_error(cut: int) -> None:
    index = IndexFile([IndexedPack(b"p" * 32, b"s" * 16, 1000, [PackEntry(BlobType.DATA, b"b" * 32, 24, 100, 90)])])
    data = index.encode()
    with pytest.raises(IntegrityError):
        IndexFile.decode(data[: len(data) - 1 - cut])


@given(st.binary(max_size=100_000), st.integers(0, 19))
def test_compression_round_trips_and_never_grows_by_more_than_a_byte(data: bytes, level: int) -> None:
    packed = Compressor(level).compress(data)
    assert len(packed) <= len(data) + 1
    assert decompress(packed, len(data)) == data


def test_decompress_refuses_unknown_codec_and_wrong_length() -> None:
    with pytest.raises(IntegrityError):
        decompress(b"\x07abc")
    packed = Compressor().compress(b"a" * 1000)
    with pytest.raises(IntegrityError):
        decompress(packed, 999)


@given(st.binary(max_size=5000), st.sampled_from(list(ObjectKind)))
def test_object_envelope_round_trips(payload: bytes, kind: ObjectKind) -> None:
    cipher = ObjectCipher(b"e" * 32)
    assert cipher.open(kind, cipher.seal(kind, payload), what="x") == payload


def test_object_envelope_binds_kind_and_key() -> None:
    cipher = ObjectCipher(b"e" * 32)
    sealed = cipher.seal(ObjectKind.INDEX, b"payload")
    with pytest.raises(IntegrityError, match="expected a snapshot"):
        cipher.open(ObjectKind.SNAPSHOT, sealed, what="x")
    with pytest.raises(IntegrityError, match="authentication"):
        ObjectCipher(b"f" * 32).open(ObjectKind.INDEX, sealed, what="x")
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(IntegrityError, match="authentication"):
        cipher.open(ObjectKind.INDEX, bytes(flipped), what="x")


def test_sealing_twice_never_reuses_a_key() -> None:
    cipher = ObjectCipher(b"e" * 32)
    a, b = cipher.seal(ObjectKind.INDEX, b"same"), cipher.seal(ObjectKind.INDEX, b"same")
    assert a[8:24] != b[8:24]  # distinct salts, hence distinct keys
    assert a[24:] != b[24:]


@given(st.booleans(), st.text(max_size=10), st.integers(1, 2**22))
def test_lock_record_round_trips(exclusive: bool, operation: str, pid: int) -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    record = LockRecord(exclusive, operation, "host", pid, "user", now, now, id="abc")
    assert LockRecord.decode(record.encode(), "abc") == record


@given(st.integers(64, 1 << 20), st.integers(0, 22))
def test_header_round_trips_and_its_mac_detects_tampering(min_size: int, level: int) -> None:
    header = RepositoryHeader(
        "a" * 32,
        "2026-01-01T00:00:00+00:00",
        chunker=ChunkerParams(min_size, max(min_size, 1 << 20), 1 << 22),
        compression_level=level,
    )
    decoded, mac = RepositoryHeader.decode(header.encode(b"k" * 32))
    assert decoded == header
    decoded.verify(mac, b"k" * 32)
    tampered = RepositoryHeader(**{**header.__dict__, "pack_size": header.pack_size * 2})
    with pytest.raises(IntegrityError, match="MAC"):
        tampered.verify(mac, b"k" * 32)


@settings(max_examples=25)
@given(st.binary(max_size=600_000), st.integers(-1, 700_000))
def test_chunker_output_does_not_depend_on_the_size_hint(data: bytes, hint: int) -> None:
    import io

    from lifeboat.core.chunking import Chunker

    chunker = Chunker(64 * 1024, 128 * 1024, 256 * 1024, seed=99)
    plain = [bytes(c) for c in chunker.chunks(io.BytesIO(data))]
    hinted = [bytes(c) for c in chunker.chunks(io.BytesIO(data), hint)]
    assert hinted == plain
    assert b"".join(plain) == data
