"""``lifeboat verify``: each snapshot checked by the kind that made it, newest per source by
default; a failure names the snapshot and exits 13."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli


def _init(cli: Cli) -> None:
    done = cli("init", "--kdf-memory", "16KiB", "--kdf-iterations", "1")
    assert done.code == 0, done


def test_verify_checks_the_newest_snapshot_of_each_source(cli: Cli, tmp_path: Path) -> None:
    _init(cli)
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a").write_text("a")
    for word in ("one", "two"):
        assert cli("backup", "command", "--name", "out.txt", "--", "echo", word).code == 0
    assert cli("backup", str(tmp_path / "tree")).code == 0
    listed = json.loads(cli("--json", "snapshots").stdout)
    newest_command = [s["id"] for s in listed if s["source"] == "out.txt"][-1]

    done = cli("verify")
    assert done.code == 0, done
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done  # the older command snapshot is not checked by default
    assert f"{newest_command[:8]} out.txt (command): ok: one file of the producer's whole output" in lines

    every = json.loads(cli("--json", "verify", "--all").stdout)
    assert (every["verified"], every["failed"]) == (3, 0)
    only = json.loads(cli("--json", "verify", "--source", "out.txt").stdout)
    assert [s["snapshot"] for s in only["snapshots"]] == [newest_command]
    assert only["snapshots"][0]["kind"] == "command" and only["snapshots"][0]["ok"] is True


def test_an_undecodable_snapshot_fails_verify_with_exit_13(cli: Cli, cli_env: dict[str, str]) -> None:
    _init(cli)
    assert cli("backup", "command", "--name", "out.txt", "--", "echo", "hi").code == 0
    bad = "ab" * 32
    (Path(cli_env["LIFEBOAT_REPO"]) / "snapshots" / bad).write_bytes(b"not a snapshot" * 10)

    done = cli("verify")
    assert done.code == 13, done
    assert f"error: snapshot {bad[:8]} cannot be read" in done.stdout
    assert "(command): ok" in done.stdout  # the readable one is still checked
    assert done.stderr.startswith("lifeboat: error: 1 of 2 snapshots failed verification: " + bad[:8]), done
    as_json = cli("--json", "verify")
    assert as_json.code == 13
    document = json.loads(as_json.stdout)
    assert document["failed"] == 1 and document["unreadable"][0]["snapshot"] == bad


def test_verify_of_an_empty_repository_says_so(cli: Cli) -> None:
    _init(cli)
    done = cli("verify")
    assert done.code == 0 and done.stdout.strip() == "no snapshots to verify", done
