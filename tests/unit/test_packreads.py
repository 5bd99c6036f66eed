"""Planning a restore's reads by pack (core/packreads.py)."""

from __future__ import annotations

from dataclasses import dataclass

from lifeboat.core.packreads import FileBlobs, plan_reads

KIB = 1024


@dataclass(frozen=True)
class At:
    pack_id: bytes
    offset: int
    length: int
    raw_length: int


def test_each_pack_is_read_once_in_pack_order_whatever_order_the_files_need_it() -> None:
    a1, a2, a3 = At(b"A", 0, 100, 200), At(b"A", 100, 100, 200), At(b"A", 200, 100, 200)
    b1 = At(b"B", 0, 50, 50)
    files = [
        FileBlobs(0, [b"a3", b"b1", b"a1"], [a3, b1, a1]),
        FileBlobs(1, [b"a2"], [a2]),
    ]
    reads = plan_reads(files, max_read=1 << 20, max_gap=0)
    assert [(r.pack_id, r.offset, r.length) for r in reads] == [(b"A", 0, 300), (b"B", 0, 50)]
    assert [b.blob_id for b in reads[0].blobs] == [b"a1", b"a2", b"a3"]
    # every blob knows where it goes: (file, offset in the file, from the plaintext lengths)
    targets = {b.blob_id: b.targets for r in reads for b in r.blobs}
    assert targets == {b"a3": [(0, 0)], b"b1": [(0, 200)], b"a1": [(0, 250)], b"a2": [(1, 0)]}


def test_a_blob_needed_in_many_places_is_read_once() -> None:
    same = At(b"A", 0, 10, 4 * KIB)
    files = [FileBlobs(0, [b"z", b"z"], [same, same]), FileBlobs(1, [b"z"], [same])]
    reads = plan_reads(files, max_read=1 << 20, max_gap=0)
    assert len(reads) == 1 and len(reads[0].blobs) == 1
    assert reads[0].blobs[0].targets == [(0, 0), (0, 4 * KIB), (1, 0)]


def test_small_gaps_are_read_over_and_large_ones_split_the_read() -> None:
    near, far = At(b"A", 0, 100, 100), At(b"A", 150, 100, 100)
    farther = At(b"A", 10_000, 100, 100)
    reads = plan_reads([FileBlobs(0, [b"n", b"f", b"x"], [near, far, farther])], max_read=1 << 20, max_gap=64)
    assert [(r.offset, r.length) for r in reads] == [(0, 250), (10_000, 100)]


def test_no_read_is_longer_than_the_limit_unless_one_blob_is() -> None:
    blobs = [At(b"A", i * 100, 100, 100) for i in range(10)]
    reads = plan_reads([FileBlobs(0, [bytes([i]) for i in range(10)], blobs)], max_read=250, max_gap=0)
    assert [r.length for r in reads] == [200, 200, 200, 200, 200]
    huge = plan_reads([FileBlobs(0, [b"h"], [At(b"A", 0, 1000, 1000)])], max_read=250, max_gap=0)
    assert [r.length for r in huge] == [1000]
