"""PostgreSQL data-page checksums (``pg_checksum_page``), vectorised over many pages.

A page's checksum is 32 interleaved FNV-1a-like hashes over its 2048 32-bit words (with
``pd_checksum`` counted as zero), two extra rounds of zeroes, folded with XOR, mixed
with the block number and reduced to 16 bits (``% 65535 + 1``). numpy computes all pages
of a block at once. A page is *damaged* when its stored checksum differs, unless it is
new (all zeroes) or was written after the backup started (its LSN is past the backup's
start: the page may be torn mid-write, and WAL replay rewrites it from a full-page image).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAGE_SIZE = 8192
N_SUMS = 32
FNV_PRIME = 16777619
BASE_OFFSETS = (
    0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
    0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
    0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
    0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
)  # fmt: skip


@dataclass(frozen=True)
class DamagedPage:
    """A page whose stored checksum is wrong."""

    block: int
    stored: int
    computed: int


def _numpy() -> Any:
    import numpy

    return numpy


def checksums(data: bytes, first_block: int) -> list[int]:
    """The checksum PostgreSQL would store in each whole page of ``data``."""
    np = _numpy()
    count = len(data) // PAGE_SIZE
    if count == 0:
        return []
    words = np.frombuffer(data, dtype="<u4", count=count * PAGE_SIZE // 4).reshape(count, -1, N_SUMS).copy()
    words[:, 0, 2] &= np.uint32(0xFFFF0000)  # pd_checksum (bytes 8-9) counts as zero
    prime = np.uint32(FNV_PRIME)
    sums = np.tile(np.array(BASE_OFFSETS, dtype=np.uint32), (count, 1))
    shift = np.uint32(17)
    for row in range(words.shape[1]):
        tmp = sums ^ words[:, row, :]
        sums = (tmp * prime) ^ (tmp >> shift)
    for _ in range(2):
        sums = (sums * prime) ^ (sums >> shift)
    folded = np.bitwise_xor.reduce(sums, axis=1)
    blocks = np.arange(first_block, first_block + count, dtype=np.uint64).astype(np.uint32)
    result = ((folded ^ blocks) % np.uint32(65535)) + np.uint32(1)
    return [int(v) for v in result]


def damaged_pages(data: bytes, first_block: int, start_lsn: int) -> list[DamagedPage]:
    """The pages of ``data`` (starting at block ``first_block``) whose checksum is wrong."""
    np = _numpy()
    count = len(data) // PAGE_SIZE
    if count == 0:
        return []
    pages = np.frombuffer(data, dtype=np.uint8, count=count * PAGE_SIZE).reshape(count, PAGE_SIZE)
    header = np.frombuffer(data, dtype="<u4", count=count * PAGE_SIZE // 4).reshape(count, -1)
    stored = (header[:, 2] & np.uint32(0xFFFF)).astype(np.uint32)
    lsn = (header[:, 0].astype(np.uint64) << np.uint64(32)) | header[:, 1].astype(np.uint64)
    new = ~pages.any(axis=1)
    computed = checksums(data, first_block)
    damaged: list[DamagedPage] = []
    for i in range(count):
        if new[i] or int(lsn[i]) >= start_lsn:
            continue
        if int(stored[i]) != computed[i]:
            damaged.append(DamagedPage(first_block + i, int(stored[i]), computed[i]))
    return damaged
