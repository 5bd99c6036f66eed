"""The in-memory blob index: correct like a dict, compact unlike one."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeboat.core.ids import BlobType
from lifeboat.errors import IntegrityError
from lifeboat.repository.index import (
    BlobIndex,
    EncodedIndexFile,
    IndexedPack,
    IndexFile,
    encode_index_file,
    encode_pack,
)
from lifeboat.repository.pack import PackEntry


def _pack(pack_id: bytes, blob_ids: list[bytes], start: int = 24) -> IndexedPack:
    entries = [PackEntry(BlobType.DATA, b, start + 100 * i, 100, 90 + i) for i, b in enumerate(blob_ids)]
    return IndexedPack(pack_id, b"s" * 16, 10_000, entries)


@settings(max_examples=40)
@given(
    st.lists(st.lists(st.binary(min_size=32, max_size=32), max_size=30), max_size=8),
    st.sampled_from(["add", "bulk", "encoded"]),
)
def test_index_answers_like_a_dict(packs: list[list[bytes]], load: str) -> None:
    index = BlobIndex()
    index.MIN_TAIL = 7  # force many merges
    expected: dict[bytes, tuple[bytes, int]] = {}
    files = []
    for n, blob_ids in enumerate(packs):
        pack = _pack(n.to_bytes(32, "big"), blob_ids)
        files.append(IndexFile([pack]))
        for entry in pack.entries:
            expected.setdefault(entry.id, (pack.pack_id, entry.offset))
    if load == "bulk":
        index.bulk_load(files)
    elif load == "encoded":
        index.bulk_load(EncodedIndexFile.of(f.encode()) for f in files)
    else:
        for f in files:
            index.add_pack(f.packs[0])
    assert len(index) == len(expected)
    for blob_id, (pack_id, offset) in expected.items():
        location = index.lookup(blob_id)
        assert location is not None
        assert (location.pack_id, location.offset) == (pack_id, offset)
        assert blob_id in index
    assert index.lookup(b"\xff" * 32) is None or b"\xff" * 32 in expected
    assert {blob for blob, _ in index.items()} == set(expected)


def test_positions_are_dense_and_invertible() -> None:
    index = BlobIndex()
    blob_ids = [os.urandom(32) for _ in range(500)]
    index.add_pack(_pack(b"p" * 32, blob_ids))
    positions = sorted(index.position(b) for b in blob_ids)
    assert positions == list(range(500))
    for blob_id in blob_ids:
        assert index.at(index.position(blob_id))[0] == blob_id
    assert index.position(b"\x00" * 32) == -1


def test_index_costs_less_than_sixty_bytes_per_blob() -> None:
    """The figure docs/format.md states: measured, not assumed."""
    count = 200_000
    files = [
        IndexFile([_pack(i.to_bytes(32, "big"), [os.urandom(32) for _ in range(1000)])]) for i in range(count // 1000)
    ]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    index = BlobIndex()
    index.bulk_load(files)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    retained = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    per_blob = retained / count
    assert len(index) == count
    assert index.memory_bytes() / count == 57
    assert per_blob < 60, f"{per_blob:.1f} bytes per blob"


def test_lookups_stay_correct_while_other_threads_add_and_merge() -> None:
    import threading

    index = BlobIndex()
    index.MIN_TAIL = 16  # merge often
    known = [os.urandom(32) for _ in range(2000)]
    index.add_pack(_pack(b"first".ljust(32, b"\0"), known))
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        try:
            for k in range(60):
                index.add_pack(_pack(f"w{n}-{k}".encode().ljust(32, b"\0"), [os.urandom(32) for _ in range(40)]))
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                for blob in known[::37]:
                    location = index.lookup(blob)
                    assert location is not None and location.pack_id.startswith(b"first")
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert len(index) == 2000 + 2 * 60 * 40


def _loaded(data: bytes, read: Callable[[bytes], IndexFile | EncodedIndexFile]) -> list[tuple[bytes, object]] | str:
    """What an index loaded from ``data`` read by ``read`` holds: its items, or the error."""
    index = BlobIndex()
    try:
        index.bulk_load([read(data)])
    except IntegrityError as exc:
        return str(exc)
    return sorted(index.items(), key=lambda item: item[0])


def test_a_damaged_index_file_fails_the_encoded_load_as_it_fails_decoding() -> None:
    """Every truncation and every changed byte of a small index file: the encoded load and the
    full decode agree, on the blobs or on the error."""
    packs = [_pack(b"p" * 32, [bytes([i]) * 32 for i in range(3)]), _pack(b"q" * 32, [b"z" * 32])]
    data = encode_index_file([encode_pack(p) for p in packs], [b"o" * 32])
    assert data == IndexFile(packs, [b"o" * 32]).encode()
    encoded, decoded = EncodedIndexFile.of, IndexFile.decode
    assert len(_loaded(data, encoded)) == 4
    for cut in range(len(data)):
        assert _loaded(data[:cut], encoded) == _loaded(data[:cut], decoded) != _loaded(data, decoded), cut
        assert isinstance(_loaded(data[:cut], encoded), str)
    for at in range(len(data)):
        for value in (0, 0x02, 0xFF):
            damaged = data[:at] + bytes([value]) + data[at + 1 :]
            assert _loaded(damaged, encoded) == _loaded(damaged, decoded), at
    with pytest.raises(IntegrityError, match="trailing bytes"):
        _ = [list(entries) for *_, entries in EncodedIndexFile.of(data + b"x").packs()]


def test_a_damaged_index_file_adds_nothing_to_an_index() -> None:
    """The encoded load checks entries as it adds them: what a damaged file added before its
    damage is taken back, so the index answers as it did (a decoded file failed before it)."""
    index = BlobIndex()
    index.bulk_load([EncodedIndexFile.of(IndexFile([_pack(b"p" * 32, [b"a" * 32])]).encode())])
    before = sorted(index.items(), key=lambda item: item[0])
    damaged = bytearray(IndexFile([_pack(b"q" * 32, [b"b" * 32, b"c" * 32]), _pack(b"r" * 32, [b"d" * 32])]).encode())
    damaged[-45] = 7  # the last entry's blob type
    with pytest.raises(IntegrityError, match="unknown blob type 7"):
        index.bulk_load([EncodedIndexFile.of(bytes(damaged))])
    assert sorted(index.items(), key=lambda item: item[0]) == before
    assert b"b" * 32 not in index and not index.has_pack(b"q" * 32) and index.pack_ids == [b"p" * 32]


@settings(max_examples=40)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=120), st.integers(1, 9))
def test_merges_by_runs_keep_the_first_copy_of_every_blob(picks: list[int], run: int) -> None:
    """Blobs added again (two backups stored them at once) and blobs whose search keys collide
    (the same first 8 bytes), merged a few at a time: each blob once, at its first location."""
    pool = [bytes([i % 3]) * 8 + i.to_bytes(24, "big") for i in range(41)]  # three search keys
    index = BlobIndex()
    index.MIN_TAIL, index.MERGE_RUN = 5, run
    expected: dict[bytes, tuple[bytes, int]] = {}
    files = []
    for n in range(0, len(picks), 4):
        pack = _pack(n.to_bytes(32, "big"), [pool[i] for i in picks[n : n + 4]])
        files.append(IndexFile([pack]))
        for entry in pack.entries:
            expected.setdefault(entry.id, (pack.pack_id, entry.offset))
    half = len(files) // 2
    index.bulk_load(files[:half])
    index.bulk_load(files[half:])  # a bulk load into a non-empty index
    assert len(index) == len(expected)
    for blob_id, (pack_id, offset) in expected.items():
        location = index.lookup(blob_id)
        assert location is not None and (location.pack_id, location.offset) == (pack_id, offset)
    positions = sorted(index.position(b) for b in expected)
    assert positions == list(range(len(expected)))


def test_a_merge_allocates_little_beyond_the_new_arrays() -> None:
    """Merging a backup's new blobs into a large index copies the sorted arrays by slices: a
    merge that sorted every blob at once made some 300 bytes of objects per indexed blob."""
    count = 200_000
    index = BlobIndex()
    index.bulk_load(
        IndexFile([_pack(i.to_bytes(32, "big"), [os.urandom(32) for _ in range(1000)])]) for i in range(count // 1000)
    )
    for i in range(4):
        index.add_pack(_pack((1000 + i).to_bytes(32, "big"), [os.urandom(32) for _ in range(1000)]))
    tracemalloc.start()
    index.compact()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(index) == count + 4000
    assert peak / count < 80, f"{peak / count:.0f} bytes per indexed blob at the merge's peak"  # the new arrays: 57


def test_loading_index_files_peaks_far_below_sorting_objects_per_blob() -> None:
    """What a backup does when it opens a repository: every index file, encoded, into an empty
    index. The peak holds the loaded entries, the new arrays and one packed int per blob (about
    250 bytes per blob); sorting ids and locations as objects peaked at 440."""
    count = 200_000
    packs = (_pack(i.to_bytes(32, "big"), [os.urandom(32) for _ in range(1000)]) for i in range(count // 1000))
    files = [EncodedIndexFile.of(IndexFile([IndexedPack(p.pack_id, p.salt, 10**6, p.entries)]).encode()) for p in packs]
    tracemalloc.start()
    index = BlobIndex()
    index.bulk_load(files)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(index) == count
    assert peak / count < 300, f"{peak / count:.0f} bytes per blob at the load's peak"


def test_a_repository_index_leaves_out_superseded_files_in_either_order() -> None:
    """A prune writes its consolidated index file before it deletes the old ones: a reader that
    lists both must see the blobs where the new file puts them (the old pack may be gone),
    whichever file the listing names first. Files are added as they arrive, so a superseded one
    that came first must be taken back."""
    from lifeboat.repository.repo import Repository
    from lifeboat.storage.memory import MemoryBackend
    from tests.conftest import FAST_KDF, PASSPHRASE

    shared, kept = os.urandom(32), os.urandom(32)
    orders = set()
    for _ in range(40):  # the files' names are hashes: try until both orders have been seen
        repo = Repository.init(MemoryBackend(), PASSPHRASE, kdf=FAST_KDF)
        old_pack, new_pack = os.urandom(32), os.urandom(32)
        old = repo.save_index_file(IndexFile([_pack(old_pack, [shared])]))
        new = repo.save_index_file(IndexFile([_pack(new_pack, [shared, kept])], supersedes=[bytes.fromhex(old)]))
        ids = repo.index_ids()
        orders.add(ids.index(old) < ids.index(new))
        index = repo.build_index(ids)
        assert len(index) == 2
        found = index.lookup(shared)
        assert found is not None and found.pack_id == new_pack
        if orders == {True, False}:
            break
    assert orders == {True, False}


def test_a_repository_reads_index_files_a_bounded_window_ahead() -> None:
    """Loading an index reads a few files ahead of the merge, never all of them at once."""
    from lifeboat.repository import repo as repo_module
    from lifeboat.repository.repo import Repository
    from lifeboat.storage.memory import MemoryBackend
    from tests.conftest import FAST_KDF, PASSPHRASE

    repo = Repository.init(MemoryBackend(), PASSPHRASE, kdf=FAST_KDF)
    for _ in range(60):
        repo.save_index_file(IndexFile([_pack(os.urandom(32), [os.urandom(32)])]))
    ids = repo.index_ids()
    reads: list[str] = []
    real = repo._index_object

    def counted(index_id: str) -> bytes:
        reads.append(index_id)
        return real(index_id)

    repo._index_object = counted  # type: ignore[method-assign]
    files = repo.load_encoded_index_files(ids)
    next(files)
    ahead = 2 * repo_module.READ_PARALLELISM
    assert len(reads) <= ahead + 1  # the first file and the window behind it
    assert sum(1 for _ in files) == len(ids) - 1
    assert sorted(reads) == sorted(ids)
