"""Ten promoted restores to random earlier points on random timelines, each writing rows and
archiving its new timeline into the repository; afterwards a restore to a random time, xid or
LSN on *every* timeline holds exactly the rows committed on that timeline's history before the
target, and `pg info` lists every timeline with its parent and switch point.

The randomness is seeded (printed; set LIFEBOAT_TIMELINE_SEED to replay a run). Clusters use
1 MiB WAL segments to keep the many recoveries short.
"""

from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lifeboat.core.wal import history_file_name
from tests.postgres.conftest import WorldFactory
from tests.postgres.timeline_model import SETTINGS, RowModel, history_line, labels, report, target_args

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("postgres-timeline-restores"),
    pytest.mark.timeout(1500),  # about 2-3 min on an idle machine; each wal-fetch start grows with the load
]

COPIES = 10
KINDS = ("lsn", "time", "xid")


def test_every_timeline_stays_restorable_to_any_point_after_ten_promoted_restores(worlds: WorldFactory) -> None:
    seed = int(os.environ.get("LIFEBOAT_TIMELINE_SEED") or time.time_ns() % 2**32)
    print(f"LIFEBOAT_TIMELINE_SEED={seed}")
    rng = random.Random(seed)
    started = time.monotonic()
    world = worlds(settings=SETTINGS, wal_segment_mb=1)
    c = world.cluster
    c.psql("CREATE TABLE rows(id serial PRIMARY KEY, label text UNIQUE)")
    world.backup()
    model = RowModel()
    for _ in range(3):
        model.write(c, 1)

    def pick(timeline: int) -> tuple[int, str]:
        """A row of ``timeline``'s history to stop after, and the kind of target; a time target
        needs a later commit on that history to stop at."""
        rows = model.on_history[timeline]
        kind = rng.choice(KINDS)
        last = len(rows) - (2 if kind == "time" else 1)
        return rng.randint(0, last), kind

    switchpoints: dict[int, tuple[int, str]] = {}
    for new in range(2, COPIES + 2):
        for _ in range(rng.randint(0, 2)):  # production keeps writing
            model.write(c, 1)
        source = rng.randint(1, new - 1)
        if source == 1:  # its newest rows must be archived to be a target
            world.wait_archived(world.switch_wal())
        through, kind = pick(source)
        where = f"seed {seed}: timeline {new} from timeline {source} after row {through} by {kind}"
        row = model.on_history[source][through]
        result, copy = world.restore(
            world.new_dir(f"copy-{new}"), "--timeline", str(source), *target_args(row, kind), "--archive"
        )
        assert result.code == 0, (where, result)
        assert report(result.stdout)["recovery"]["timeline"] == new, where  # type: ignore[index]
        model.branch(new, source, through)
        assert labels(copy) == model.expected(new, through), where
        for _ in range(rng.randint(1, 2)):
            model.write(copy, new)
        switchpoints[new] = history_line(copy.data_dir, new)
        assert switchpoints[new][0] == source, where
        world.wait_archived(world.switch_wal(copy))
        world.wait_archived(history_file_name(new))
        copy.stop()
    model.write(c, 1)  # production archives last: it stays the live timeline
    world.wait_archived(world.switch_wal())
    created = time.monotonic() - started

    def check(timeline: int, through: int, kind: str) -> None:
        where = f"seed {seed}: timeline {timeline} after row {through} by {kind}"
        row = model.on_history[timeline][through]
        args = ("--timeline", str(timeline), *target_args(row, kind))
        result, restored = world.restore(world.new_dir(f"check-{timeline}"), *args)
        assert result.code == 0, (where, result)
        assert labels(restored) == model.expected(timeline, through), where
        restored.stop()

    targets = [(timeline, *pick(timeline)) for timeline in range(1, COPIES + 2)]
    with ThreadPoolExecutor(2) as pool:  # two recoveries at a time: each mostly waits on wal-fetch
        for done in [pool.submit(check, *target) for target in targets]:
            done.result()

    result = world.lifeboat("--json", "pg", "info")
    assert result.code == 0, result
    (cluster,) = json.loads(result.stdout)["clusters"]
    listed = {t["timeline"]: t for t in cluster["wal"]["timelines"]}
    assert sorted(listed) == list(range(1, COPIES + 2))
    assert {n: (t["parent"], t["switchpoint"]) for n, t in listed.items() if n > 1} == switchpoints
    assert (cluster["status"], cluster["recoverable"]["timeline"]) == ("ok", 1)
    print(f"ten promoted restores: {created:.0f}s; all checks: {time.monotonic() - started:.0f}s")
