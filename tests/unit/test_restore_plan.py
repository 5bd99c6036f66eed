"""Restore plans without a server: free-space arithmetic and its refusal, the WAL range of a
time target from arrival times, rates from a drill's result, the text and JSON forms.

Free space is measured through an injected function here: a full filesystem cannot be made
without mount rights, so the refusal is proven on the arithmetic and the plan it produces.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifeboat.app.cli.restore_plan_view import render_plan
from lifeboat.core.basebackup import BaseBackup, RestoreTarget
from lifeboat.core.wal import Lsn, TimelineHistory, WalSegment
from lifeboat.errors import RestoreRefused, WalMissing
from lifeboat.operations.restore_plan import estimate, rates_from_drill, wal_range
from lifeboat.sources.plan import (
    UNKNOWN,
    Estimate,
    PlannedWrite,
    RestorePlan,
    free_space,
    judge_space,
    nearest_existing,
)

MiB = 1024 * 1024


def _plan(*writes: PlannedWrite) -> RestorePlan:
    return RestorePlan("files", "ab" * 32, "2026-11-30T07:00:00+00:00", "directory /restore", writes=list(writes))


def _measure(table: dict[str, tuple[int, int]]) -> Callable[[str], tuple[int, int]]:
    return lambda directory: table[directory]


def test_writes_on_one_filesystem_add_up_and_others_are_apart(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    table = {str(one): (100 * MiB, 1), str(two): (50 * MiB, 2), str(tmp_path): (100 * MiB, 1)}
    writes = [
        PlannedWrite("data directory", str(one / "absent" / "deeper"), 30 * MiB),
        PlannedWrite("tablespace", str(two), 60 * MiB),
        PlannedWrite("WAL", str(tmp_path / "nothing"), 500 * MiB, peak=40 * MiB),
        PlannedWrite("program", "cat", 999 * MiB, on_disk=False),
    ]
    spaces = free_space(writes, _measure(table))
    by_path = {s.path: s for s in spaces}
    assert set(by_path) == {str(one), str(two)}
    assert by_path[str(one)].needed == 70 * MiB and by_path[str(one)].fits  # 30 MiB + the WAL's peak
    assert by_path[str(two)].needed == 60 * MiB and not by_path[str(two)].fits
    assert by_path[str(one)].destinations == (str(one / "absent" / "deeper"), str(tmp_path / "nothing"))


def test_the_nearest_existing_directory_is_measured(tmp_path: Path) -> None:
    assert nearest_existing(str(tmp_path / "a" / "b" / "c")) == str(tmp_path)
    assert nearest_existing(str(tmp_path)) == str(tmp_path)
    (tmp_path / "file").write_text("x")
    assert nearest_existing(str(tmp_path / "file" / "below")) == str(tmp_path)


def test_too_little_free_space_is_a_refusal_and_with_force_a_warning(tmp_path: Path) -> None:
    measure = _measure({str(tmp_path): (10 * MiB, 7)})
    plan = _plan(PlannedWrite("files", str(tmp_path / "restore"), 11 * MiB))
    judge_space(plan, force=False, measure=measure)
    assert not plan.feasible
    (refusal,) = plan.refusals
    assert isinstance(refusal, RestoreRefused) and int(refusal.exit_code) == 1
    assert refusal.message == f"11.0 MiB to write on the filesystem of {tmp_path}, but only 10.0 MiB is free"

    forced = _plan(PlannedWrite("files", str(tmp_path / "restore"), 11 * MiB))
    judge_space(forced, force=True, measure=measure)
    assert forced.feasible and forced.warnings[0].startswith("11.0 MiB to write")

    fits = _plan(PlannedWrite("files", str(tmp_path / "restore"), 10 * MiB))
    judge_space(fits, force=False, measure=measure)
    assert fits.feasible and fits.checks == ["free space suffices"]
    assert fits.to_json()["space"] == [
        {
            "path": str(tmp_path),
            "free": 10 * MiB,
            "needed": 10 * MiB,
            "fits": True,
            "destinations": [str(tmp_path / "restore")],
        }
    ]


def test_the_text_form_says_what_is_written_where_and_why_it_is_refused() -> None:
    plan = _plan(PlannedWrite("files", "/restore", 3 * MiB, 12, state="not empty"))
    plan.lines.append("12 files, 3 directories, 0 links")
    plan.refuse(RestoreRefused("restore target /restore is not empty"))
    plan.warnings.append("a warning naming {option:force}")
    lines = render_plan(plan)
    assert lines[0] == f"restore plan: files snapshot {'ab' * 4} (2026-11-30T07:00:00+00:00) into directory /restore"
    assert "  12 files, 3 directories, 0 links" in lines
    assert "    files: /restore [not empty]: 3.0 MiB, 12 files" in lines
    assert f"  bytes to write: 3.0 MiB ({3 * MiB} bytes)" in lines
    assert "  estimated time: unknown (no drill has run)" in lines
    assert "  warning: a warning naming --force" in lines
    assert "  refused: restore target /restore is not empty" in lines
    assert lines[-1] == "not feasible: the restore would stop (nothing was written)"


def test_the_json_form_is_the_documented_shape() -> None:
    plan = _plan(PlannedWrite("files", "/restore", 5, 1, state="absent"))
    plan.refuse(WalMissing("segment X is missing"))
    doc = plan.to_json()
    assert list(doc) == [
        "plan", "feasible", "kind", "snapshot", "snapshot_time", "destination", "writes", "files", "bytes",
        "space", "checks", "unchecked", "warnings", "refusals", "estimate", "details",
    ]  # fmt: skip
    assert doc["writes"] == [
        {"what": "files", "where": "/restore", "bytes": 5, "files": 1, "on_disk": True, "state": "absent", "space": 5}
    ]
    assert doc["refusals"][0]["exit_code"] == 13 and doc["feasible"] is False
    assert doc["estimate"] == {"seconds": None, "basis": "unknown (no drill has run)"}


def test_rates_come_from_a_drills_phases_and_bytes() -> None:
    drill = {
        "started": "2026-11-29T03:00:00+00:00",
        "snapshot": "cd" * 32,
        "restored_bytes": 200 * MiB,
        "phases": [
            {"name": "plan", "seconds": 0.5},
            {"name": "restore", "seconds": 10.0},
            {"name": "replay", "seconds": 4.0},
            {"name": "start", "seconds": 2.0},
            {"name": "validate", "seconds": 1.0},
        ],
    }
    rates = rates_from_drill(drill)
    assert rates is not None and rates.restore_bytes_per_second == 20 * MiB
    assert estimate(400 * MiB, rates) == Estimate(20.0, "the drill of 2026-11-29T03:00:00+00:00: restore at 20.0 MiB/s")
    assert estimate(400 * MiB, rates, replays=True).seconds == 26.0
    assert rates_from_drill({"restored_bytes": 0, "phases": [{"name": "restore", "seconds": 3}]}) is None
    assert estimate(1, None) is UNKNOWN


def _backup() -> BaseBackup:
    size = 16 * MiB
    when = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    return BaseBackup(
        method="local",
        system_id="7000000000000000001",
        version="15.0",
        version_num=150000,
        timeline=1,
        start_lsn=Lsn(2 * size + 40),
        stop_lsn=Lsn(2 * size + 4000),
        start_time=when,
        stop_time=when,
        label="t",
        data_directory="/pg",
        snapshot_id="ef" * 32,
    )


@pytest.mark.parametrize("lost", [None, 4])
def test_a_time_target_reaches_through_the_first_segment_archived_after_it(lost: int | None) -> None:
    backup = _backup()
    names = {n: WalSegment(1, n).name for n in range(2, 9)}
    arrivals = {names[n]: datetime(2026, 11, 30, 6, n, tzinfo=UTC).timestamp() for n in names}
    archived = {name for n, name in names.items() if n != lost}
    target = RestoreTarget(time=datetime(2026, 11, 30, 6, 5, 30, tzinfo=UTC))
    wal = wal_range(backup, TimelineHistory.root(1), target, archived, arrivals)
    assert [s.number for s in wal.segments] == [2, 3, 4, 5, 6]  # 6 arrived at 06:06, after the target
    assert wal.required == 1  # the restore itself proves only the way to consistency
    assert wal.missing == (() if lost is None else (names[4],))
    assert wal.to_json()["all_present"] is (lost is None)


def test_latest_reaches_the_end_of_the_archive_and_an_lsn_its_segment() -> None:
    backup = _backup()
    archived = {WalSegment(1, n).name for n in range(2, 9)}
    latest = wal_range(backup, TimelineHistory.root(1), RestoreTarget(), archived, {})
    assert [s.number for s in latest.segments] == list(range(2, 9))
    lsn = wal_range(backup, TimelineHistory.root(1), RestoreTarget(lsn=Lsn(5 * 16 * MiB + 8)), archived, {})
    assert [s.number for s in lsn.segments] == [2, 3, 4, 5]
