"""The recovery window on a real cluster: ``forget --keep-within`` then ``pg prune-wal`` once left
no base backup for a time inside the kept window. Now the base backup that reaches the window's
start is kept, ``forget`` expires the WAL in the same step (saying why), and a restore to a
time inside the window works; ``pg info`` shows the guaranteed window beside the existing one."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.sources.tools.pgcluster import chown_tree
from tests.postgres.conftest import OS_USER, WorldFactory

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-recovery-window")]


def test_forget_keeps_the_backup_that_reaches_the_window_start_and_a_time_inside_it_restores(
    worlds: WorldFactory,
) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE marks(label text PRIMARY KEY)")
    for _ in range(2):  # WAL older than every base backup: the one-step forget expires it
        world.switch_wal()
    first = json.loads(world.backup().stdout)
    c.psql("INSERT INTO marks VALUES ('a')")
    committed_a = datetime.now(UTC)
    world.wait_archived(world.switch_wal())
    time.sleep(8)  # the window will begin between 'a' and the second base backup
    second = json.loads(world.backup().stdout)
    c.psql("INSERT INTO marks VALUES ('b')")
    world.wait_archived(world.switch_wal())
    target = committed_a + timedelta(seconds=4)  # inside the window, before the second backup
    assert datetime.fromisoformat(second["postgres"]["stop_time"]) > target

    # A keep-within that keeps only the second backup by age: the window starts after 'a'.
    within = f"{(datetime.now(UTC) - committed_a).total_seconds() - 0.5:.1f}"
    first_id, second_id = first["snapshot"]["id"], second["snapshot"]["id"]
    dry = json.loads(world.lifeboat("--json", "forget", "--keep-within", within, "--dry-run").stdout)
    [group] = dry["groups"]
    kept = {k["id"]: k["reasons"] for k in group["keep"]}
    assert set(kept) == {first_id, second_id}, dry
    [why] = kept[first_id]
    assert why.startswith(f"needed by the recovery window ({within.removesuffix('.0')}")
    assert "the newest base backup consistent by its start" in why
    [wal] = dry["wal"]
    start_wal = first["postgres"]["start_wal"]
    assert wal["reason"] == f"before {start_wal}, the start of the oldest kept base backup {first_id[:8]}"
    assert wal["removed"] > 0 and wal["last_removed"] < start_wal and wal["dry_run"] is True
    assert wal["ranges"][0]["timeline"] == 1 and wal["ranges"][0]["last"] < start_wal

    text = world.lifeboat("forget", "--keep-within", within)
    assert text.code == 0, text
    assert f"keep   {first_id[:8]}" in text.stdout and "needed by the recovery window" in text.stdout
    assert f"removed {wal['removed']} files" in text.stdout
    assert f"before {start_wal}, the start of the oldest kept base backup {first_id[:8]}" in text.stdout
    assert "timeline 1: " in text.stdout

    # What was reproduced before: prune-wal after forget. Nothing a kept backup needs goes.
    pruned = json.loads(world.lifeboat("--json", "pg", "prune-wal").stdout)[0]
    assert pruned["removed"] == 0 and pruned["keep_from"] == start_wal
    info = json.loads(world.lifeboat("--json", "pg", "info").stdout)["clusters"][0]
    assert info["wal"]["timelines"][0]["ranges"][0]["first"] == start_wal

    result, restored = world.restore(world.new_dir("inside-window"), "--time", target.isoformat(), "--archive-off")
    assert result.code == 0, result
    assert restored.psql("SELECT string_agg(label, ',' ORDER BY label) FROM marks") == "a"
    restored.stop()

    # pg info: the window the configured policy guarantees beside the one that exists.
    source = second["snapshot"]["source"]
    config = world.base / "lifeboat.yaml"

    def configured(window: str) -> dict[str, object]:
        config.write_text(
            f"sources:\n  {source}:\n    type: postgres\n    data_directory: {c.data_dir}\n"
            f"    retention: {{recovery_window: {window}, keep_daily: 7}}\n"
        )
        chown_tree(config, OS_USER)
        shown = world.lifeboat("--json", "pg", "info", env={"LIFEBOAT_CONFIG": str(config)})
        assert shown.code == 0, shown
        cluster: dict[str, object] = json.loads(shown.stdout)["clusters"][0]
        return cluster

    short = configured("5s")
    assert short["guaranteed"]["recovery_window"] == "5s"  # type: ignore[index]
    assert short["guaranteed"]["policy"] == "keep daily 7; recovery window 5s"  # type: ignore[index]
    assert short["existing"]["from"] == first["postgres"]["stop_time"]  # type: ignore[index]
    assert short["warnings"] == []
    long = configured("1h")
    [warning] = long["warnings"]  # type: ignore[misc]
    assert "later than the 1h recovery window retention guarantees" in warning
    shown = world.lifeboat("pg", "info", env={"LIFEBOAT_CONFIG": str(config)})
    assert "guaranteed by retention" in shown.stdout and "recoverable from" in shown.stdout
    assert "WARNING: the existing window begins" in shown.stdout
