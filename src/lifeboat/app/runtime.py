"""Process-wide tuning for a data-heavy run, applied once at start-up by the entry points.

Two CPython/glibc defaults cost a backup much of its time, measured with py-spy:

- the cyclic garbage collector, triggered every 700 container allocations, rescans the
  long-lived objects of a large walk again and again (18 % of samples on a 620 MiB tree);
- glibc hands blocks above 128 KiB back to the kernel on every free, so each chunk-sized
  buffer is faulted in afresh; keeping chunk-sized blocks (up to 8 MiB) in the heap doubled
  the pack writer's speed, while whole packs still go straight back to the kernel; one
  arena for every thread (not eight per core) keeps the workers from each hoarding freed
  blocks: a files backup of the 2.6 GiB bench tree peaks at 76 MiB against 80 with two
  arenas, at the same speed (farm-bench, 4 pairs), a restore at 67 against 69, a
  ``restore postgres`` at 51 against 52 in 0.92x the time, a ``backup postgres`` of
  pgbench -s 100 at 62 against 63 in the same time (farm-bench, 9 cold pairs: medians 0.95x
  and 1.03x; with psycopg loaded, before its session became a psql process, one arena had
  cost it 1.11x).
"""

from __future__ import annotations

import ctypes
import gc

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_process() -> None:
    gc.set_threshold(50_000, 20, 20)
    try:
        libc = _libc()
        libc.mallopt(_M_MMAP_THRESHOLD, 8 * 1024 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 16 * 1024 * 1024)
        libc.mallopt(_M_ARENA_MAX, 1)  # one heap for every thread: the least memory held in fragments
    except (OSError, AttributeError):
        return


def release_memory() -> None:
    """Give freed memory back to the system (a long-running daemon between jobs): the chunking
    buffers kept for the next stream, a full garbage collection, then glibc's
    ``malloc_trim(0)`` returns the free heap pages the trim threshold above would keep."""
    from lifeboat.core.chunking import drop_buffers

    drop_buffers()
    gc.collect()
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):
        return


def _libc() -> ctypes.CDLL:
    """The C library's functions, from the symbols the interpreter already has loaded (not
    ``ctypes.util.find_library``, which runs ``ldconfig`` and imports subprocess, shutil and
    tempfile: 2 MiB resident and 10 ms)."""
    return ctypes.CDLL(None)
