"""``restore … --plan``: what a restore would write and where, refused as the restore
refuses, with nothing written; its counts and bytes are the real restore's."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli


def _init(cli: Cli) -> None:
    done = cli("init", "--kdf-memory", "16KiB", "--kdf-iterations", "1")
    assert done.code == 0, done


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n" * 100)
    (tree / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
    (tree / "sub" / "deeper" / "c.txt").write_text("c")
    (tree / "link").symlink_to("a.txt")
    return tree


def _locks(cli_env: dict[str, str]) -> list[str]:
    locks = Path(cli_env["LIFEBOAT_REPO"]) / "locks"
    return sorted(p.name for p in locks.iterdir()) if locks.is_dir() else []


def test_plan_counts_and_bytes_equal_the_real_restore(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    _init(cli)
    tree = _tree(tmp_path)
    assert cli("backup", str(tree)).code == 0
    target = tmp_path / "out" / "restored"
    before = _locks(cli_env)

    planned = cli("--json", "restore", "latest", "--target", str(target), "--plan")
    assert planned.code == 0, planned
    assert not target.exists() and not target.parent.exists()  # nothing written, not even created
    assert _locks(cli_env) == before  # the shared lock it took is gone
    plan = json.loads(planned.stdout)
    assert plan["plan"] is True and plan["feasible"] is True and plan["kind"] == "files"
    assert plan["refusals"] == [] and plan["estimate"] == {"seconds": None, "basis": "unknown (no drill has run)"}
    (write,) = plan["writes"]
    assert write["where"] == str(target) and write["state"] == "absent" and write["on_disk"] is True
    (space,) = plan["space"]
    assert space["fits"] is True and space["needed"] == plan["bytes"] and space["path"] == str(tmp_path)
    assert space["free"] > 0

    restored = cli("--json", "restore", "latest", "--target", str(target))
    assert restored.code == 0, restored
    real = json.loads(restored.stdout)
    assert (plan["files"], plan["bytes"]) == (real["files"], real["bytes"]) == (3, 600 + 10240 + 1)
    assert plan["details"] == {k: real[k] for k in ("files", "dirs", "links", "bytes")}


def test_plan_text_shows_the_writes_and_free_space(cli: Cli, tmp_path: Path) -> None:
    _init(cli)
    tree = _tree(tmp_path)
    assert cli("backup", str(tree)).code == 0
    target = tmp_path / "restored"
    done = cli("restore", "latest", "--target", str(target), "--plan", "--include", "*.txt")
    assert done.code == 0, done
    lines = done.stdout.splitlines()
    assert lines[0].startswith("restore plan: files snapshot ") and lines[0].endswith(f"into directory {target}")
    assert f"    files: {target} [absent]: 601 B, 2 files" in lines, done
    assert any(line.startswith(f"  free space at {tmp_path}: ") and line.endswith(": fits") for line in lines)
    assert "  estimated time: unknown (no drill has run)" in lines
    assert lines[-1] == "feasible: nothing was written"
    assert not target.exists()


def test_plan_refuses_a_non_empty_target_with_the_restores_message(cli: Cli, tmp_path: Path) -> None:
    _init(cli)
    tree = _tree(tmp_path)
    assert cli("backup", str(tree)).code == 0
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")

    real = cli("restore", "latest", "--target", str(target))
    planned = cli("restore", "latest", "--target", str(target), "--plan")
    assert planned.code == real.code == 1, (planned, real)
    assert planned.stderr == real.stderr  # the same error line and hint
    assert f"restore target {target} is not empty" in planned.stderr
    assert f"  refused: restore target {target} is not empty" in planned.stdout.splitlines()
    assert planned.stdout.splitlines()[-1] == "not feasible: the restore would stop (nothing was written)"
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]

    as_json = cli("--json", "restore", "latest", "--target", str(target), "--plan")
    assert as_json.code == 1
    plan = json.loads(as_json.stdout)
    assert plan["feasible"] is False
    assert plan["refusals"] == [
        {
            "message": f"restore target {target} is not empty",
            "hint": "restore into an empty directory, or pass --force to overwrite",
            "exit_code": 1,
        }
    ]
    assert plan["writes"][0]["state"] == "not empty"

    forced = cli("--json", "restore", "latest", "--target", str(target), "--plan", "--force")
    assert forced.code == 0 and json.loads(forced.stdout)["feasible"] is True


def test_plan_of_a_command_restore_names_the_program(cli: Cli, tmp_path: Path) -> None:
    _init(cli)
    config = tmp_path / "lifeboat.yaml"
    sink = tmp_path / "sink"
    config.write_text(
        "sources:\n  out:\n    type: command\n    command: [echo, hello]\n"
        f"    restore_command: [sh, -c, 'cat > {sink}']\n"
    )
    backed = cli("--config", str(config), "backup", "--source", "out")
    assert backed.code == 0, backed
    done = cli("--config", str(config), "--json", "restore", "latest", "--source", "out", "--plan")
    assert done.code == 0, done
    plan = json.loads(done.stdout)
    assert plan["kind"] == "command" and plan["bytes"] == 6
    assert plan["destination"] == f"program sh -c cat > {sink}"
    assert plan["writes"][0]["on_disk"] is False and plan["space"] == []
    assert not sink.exists()  # the program never ran


def test_the_estimate_comes_from_the_last_drill_of_the_source(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from lifeboat.operations.records import new_record, save_record
    from lifeboat.repository.repo import Repository
    from lifeboat.storage.local import LocalBackend
    from tests.conftest import PASSPHRASE

    _init(cli)
    assert cli("backup", str(_tree(tmp_path))).code == 0
    source = json.loads(cli("--json", "snapshots").stdout)[0]["source"]
    repo = Repository.open(LocalBackend(cli_env["LIFEBOAT_REPO"]), PASSPHRASE)
    drill = {
        "started": "2026-11-29T03:00:00+00:00",
        "restored_bytes": 1024 * 1024,
        "phases": [{"name": "plan", "seconds": 0.1}, {"name": "restore", "seconds": 4.0}],
    }
    when = datetime(2026, 11, 29, 3, 1, tzinfo=UTC)
    save_record(repo, new_record("drill", source, ok=True, summary={}, result=drill, time=when))
    save_record(
        repo, new_record("drill", "another", ok=True, summary={}, result={**drill, "restored_bytes": 1}, time=when)
    )

    plan = json.loads(cli("--json", "restore", "latest", "--target", str(tmp_path / "out"), "--plan").stdout)
    assert plan["estimate"] == {
        "seconds": round(plan["bytes"] / (256 * 1024), 1),
        "basis": "the drill of 2026-11-29T03:00:00+00:00: restore at 256.0 KiB/s",
    }
    text = cli("restore", "latest", "--target", str(tmp_path / "out"), "--plan")
    assert "  estimated time: 0.0s (from the drill of 2026-11-29T03:00:00+00:00: restore at 256.0 KiB/s)" in text.stdout


def test_restore_command_plan_runs_no_program(cli: Cli, tmp_path: Path) -> None:
    _init(cli)
    assert cli("backup", "command", "--name", "out.txt", "--", "echo", "hello").code == 0
    sink = tmp_path / "sink"
    done = cli("restore", "command", "latest", "--plan", "--", "sh", "-c", f"cat > {sink}")
    assert done.code == 0, done
    assert f"    /out.txt on standard input: sh -c cat > {sink}: 6 B, 1 file" in done.stdout.splitlines()
    assert not sink.exists()
    missing = cli("restore", "command", "latest", "--path", "nope", "--plan", "--", "cat")
    assert missing.code == 1 and "has no path /nope" in missing.stderr, missing
