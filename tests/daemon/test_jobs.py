"""Every kind of scheduled job run by a real daemon into real repositories: backup, retention,
prune, copy to a follower, check, verify and a drill — one slot, so they run one after the
other by priority, each recorded with what its operation returned."""

from __future__ import annotations

import signal

from tests.daemon.conftest import World


def test_every_kind_of_job_runs_in_priority_order_and_is_recorded(world: World) -> None:
    data = world.root / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n" * 1000)
    (data / "b.txt").write_text("beta\n")
    world.write_config(
        f"""  files:
    type: files
    paths: [{data}]
    retention: {{keep_last: 1}}
    schedule:
      backup: {{every: 1h}}
      retention: {{every: 1h}}
      verify: {{every: 1h}}
      drill: {{every: 1h}}
""",
        daemon="  max_parallel_jobs: 1",
        repositories=f"""    schedule: {{prune: 1h, check: 1h}}
  offsite:
    url: {world.root / "offsite"}
    password_file: {world.root / "passphrase"}
    follows: main
    schedule: {{copy: 1h}}
""",
    )
    init = world.cli("--repo", "offsite", "init")
    assert init.code == 0, init
    served = world.serve()
    names = [
        "backup:files",
        "retention:files",
        "prune:main",
        "copy:offsite",
        "check:main",
        "verify:files",
        "drill:files",
    ]
    for name in names:
        served.wait_logged("run finished", job=name)
    finished = {r["job"]: r for r in served.logged("run finished")}
    assert {name: finished[name]["status"] for name in names} == dict.fromkeys(names, "succeeded"), finished
    started = [r["job"] for r in served.logged("run started")]
    assert started == names  # one slot: by priority once the first had started; the drill last
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0

    runs = {run.job: run for run in world.runs()}
    backup = runs["backup:files"]
    assert backup.bytes_read == len("alpha\n" * 1000) + len("beta\n")
    snapshot = backup.summary["snapshot"]["id"]
    verified = runs["verify:files"].summary["snapshots"]
    assert [(v["snapshot"], v["ok"]) for v in verified] == [(snapshot, True)]
    assert runs["drill:files"].summary["status"] == "passed" and runs["drill:files"].summary["record"]
    assert runs["copy:offsite"].summary["copied"][0]["source_id"] == snapshot
    copied = world.cli("--repo", "offsite", "snapshots", "--json")
    assert copied.code == 0 and '"source": "files"' in copied.stdout.replace('":"', '": "'), copied
    records = world.cli("records", "--json")
    assert '"verify"' in records.stdout and '"drill"' in records.stdout, records


def test_a_check_that_finds_damage_keeps_what_it_found_in_the_run(world: World) -> None:
    """A failed check is exit 13 with its findings in the run's summary (the catalog and the API
    show which pack), not only an error line."""
    data = world.root / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n" * 1000)
    world.write_config(f"  files:\n    type: files\n    paths: [{data}]\n", repositories="    schedule: {check: 1h}\n")
    backup = world.cli("backup", "--source", "files")
    assert backup.code == 0, backup
    pack = max((world.root / "repo" / "data").glob("*/*"), key=lambda p: p.stat().st_size)
    pack.write_bytes(pack.read_bytes()[:-100])  # cut short

    served = world.serve()
    served.wait_logged("run finished", job="check:main")
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0
    (run,) = world.runs("check:main")
    assert (run.status, run.exit_code) == ("failed", 13), run
    assert run.summary["ok"] is False and run.summary["errors"], run.summary
    assert any(pack.name[:8] in e["object"] for e in run.summary["errors"]), run.summary["errors"]
