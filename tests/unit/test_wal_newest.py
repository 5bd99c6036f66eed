"""The newest archived segment on a recovery path, found without parsing a whole archive."""

from __future__ import annotations

import random

from lifeboat.core.wal import (
    DEFAULT_SEGMENT_SIZE,
    Lsn,
    TimelinePeriod,
    WalSegment,
    last_archived_on_path,
    timeline_for_segment,
)

SIZE = DEFAULT_SEGMENT_SIZE


def reference(path: list[TimelinePeriod], archived: list[str], after: int) -> WalSegment | None:
    """The rule, read literally: every segment of the path that ends after ``after``, the newest."""
    on_path = {p.timeline for p in path}
    found = []
    for name in archived:
        try:
            segment = WalSegment.parse(name, SIZE)
        except ValueError:
            continue
        if (
            segment.timeline in on_path
            and segment.end_lsn > after
            and timeline_for_segment(path, segment.number, SIZE) == segment.timeline
        ):
            found.append(segment)
    return max(found, key=lambda s: s.number, default=None)


def test_the_newest_segment_on_the_path_whatever_the_archive_holds() -> None:
    rng = random.Random(14)
    for _ in range(300):
        switch = rng.randrange(1, 600) * SIZE + rng.randrange(SIZE)
        path = [TimelinePeriod(1, Lsn(0), Lsn(switch)), TimelinePeriod(2, Lsn(switch), None)]
        archived = [WalSegment(1, n, SIZE).name for n in rng.sample(range(700), rng.randrange(0, 300))]
        archived += [WalSegment(2, n, SIZE).name for n in rng.sample(range(700), rng.randrange(0, 300))]
        archived += [WalSegment(3, n, SIZE).name for n in rng.sample(range(900), 20)]  # another history's
        archived += ["00000002.history", "000000010000000000000010.partial", "0000000100000001000001FF"]
        rng.shuffle(archived)
        after = rng.choice([-1, rng.randrange(800) * SIZE])
        assert last_archived_on_path(path, archived, after, SIZE) == reference(path, archived, after)
