"""``lifeboat verify``: each snapshot checked by the kind that made it, newest per source by
default; a failure names the snapshot and exits 13."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from lifeboat.core.treewalk import find
from lifeboat.repository import layout
from lifeboat.repository.repo import Repository
from lifeboat.storage.local import LocalBackend
from tests.conftest import PASSPHRASE, Cli


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


# --- reading the data back ----------------------------------------------------------------------------


def _open(cli_env: dict[str, str]) -> Repository:
    return Repository.open(LocalBackend(Path(cli_env["LIFEBOAT_REPO"])), PASSPHRASE)


def _damage_blob_of(cli_env: dict[str, str], snapshot_id: str, path: str) -> None:
    """Flip one byte inside the stored data of the file at ``path`` (its pack stays in place)."""
    repo = _open(cli_env)
    node = find(repo, repo.load_snapshot(snapshot_id).tree, path)
    assert node is not None and node.content
    location = repo.locate(node.content[0])
    pack = Path(cli_env["LIFEBOAT_REPO"]) / layout.pack_name(location.pack_id.hex())
    data = bytearray(pack.read_bytes())
    data[location.offset + location.length // 2] ^= 0x01
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))


def test_read_data_finds_a_damaged_pack_and_names_the_snapshot_and_the_file(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _init(cli)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "precious.txt").write_bytes(b"precious data " * 1000)
    (tree / "other.txt").write_text("other")
    assert cli("backup", str(tree)).code == 0
    snapshot_id = json.loads(cli("--json", "snapshots").stdout)[0]["id"]
    _damage_blob_of(cli_env, snapshot_id, str(tree / "sub" / "precious.txt").lstrip("/"))

    quick = cli("verify", "--spot-check", "0")
    assert quick.code == 0, quick  # without reading the data back, the damage is not seen

    done = cli("verify", "--read-data", "--spot-check", "0")
    assert done.code == 13, done
    assert f"{snapshot_id[:8]} {tree} (files): FAILED:" in done.stdout
    assert f"error: {snapshot_id[:8]} {tree}: {tree}/sub/precious.txt needs blob" in done.stdout
    assert "fails authentication" in done.stdout
    assert done.stderr.startswith(f"lifeboat: error: 1 of 1 snapshots failed verification: {snapshot_id[:8]}"), done

    as_json = cli("--json", "verify", "--read-data-subset", "100%", "--spot-check", "0")
    assert as_json.code == 13
    document = json.loads(as_json.stdout)
    entry = document["snapshots"][0]
    assert entry["ok"] is False and entry["read_data"]["blobs"] == 2
    assert entry["record"] and document["records"] == [entry["record"]]


def test_read_data_of_a_whole_repository_passes_and_a_bad_subset_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    _init(cli)
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a").write_bytes(b"a" * 100_000)
    assert cli("backup", str(tmp_path / "tree")).code == 0
    assert cli("backup", "command", "--name", "out.txt", "--", "echo", "hi").code == 0
    done = cli("--json", "verify", "--read-data")
    assert done.code == 0, done
    document = json.loads(done.stdout)
    assert [s["read_data"]["blobs"] >= 1 for s in document["snapshots"]] == [True, True]
    assert sum(s["read_data"]["bytes"] for s in document["snapshots"]) >= 100_000
    sampled = cli("verify", "--read-data-subset", "1/3")
    assert sampled.code == 0, sampled
    bad = cli("verify", "--read-data-subset", "200%")
    assert bad.code == 2 and "invalid subset" in bad.stderr, bad


# --- the spot check of files sources ------------------------------------------------------------------


def test_the_spot_check_finds_a_file_the_backup_missed_and_one_stored_with_other_content(
    cli: Cli, tmp_path: Path
) -> None:
    _init(cli)
    tree = tmp_path / "tree"
    tree.mkdir()
    old = time.time() - 86_400
    for i in range(5):
        (tree / f"f{i}").write_text(f"content {i}")
        os.utime(tree / f"f{i}", (old, old))
    assert cli("backup", str(tree)).code == 0
    clean = cli("--json", "verify")
    assert clean.code == 0, clean
    spot = json.loads(clean.stdout)["snapshots"][0]["spot_check"]
    assert (spot["sampled"], spot["eligible"], spot["missing"], spot["differing"]) == (5, 5, [], [])

    # A file that was there before the snapshot (its mtime says so) but is not in it.
    (tree / "missed").write_text("never backed up")
    os.utime(tree / "missed", (old, old))
    # A file whose content changed while its size and mtime stayed the same.
    (tree / "f2").write_text("CONTENT 2")
    os.utime(tree / "f2", (old, old))
    # A file changed after the snapshot (new mtime) is not a problem: it may rightly differ.
    (tree / "f3").write_text("changed after the snapshot, longer")

    done = cli("verify", "--spot-check", "100")
    assert done.code == 13, done
    assert "error: " in done.stdout
    assert f"{tree}/missed (15 bytes, modified " in done.stdout
    assert "on this host and unchanged since the snapshot, but not in it" in done.stdout
    assert f"{tree}/f2 (9 bytes, modified " in done.stdout
    assert "stored with other content than the live file" in done.stdout
    assert f"{tree}/f3" not in done.stdout
    assert "5 live files unchanged since the snapshot compared with it" in done.stdout

    assert cli("verify", "--spot-check", "0").code == 0  # no spot check: nothing else is wrong


def test_no_spot_check_when_the_paths_are_not_on_this_host(cli: Cli, tmp_path: Path) -> None:
    _init(cli)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_text("a")
    assert cli("backup", str(tree)).code == 0
    (tree / "a").unlink()
    tree.rmdir()
    done = cli("verify")
    assert done.code == 0, done
    assert "no spot check (the snapshot's paths are not on this host)" in done.stdout


def test_no_spot_check_of_a_snapshot_another_host_took(cli: Cli, tmp_path: Path) -> None:
    _init(cli)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_text("a")
    assert cli("backup", "--host", "elsewhere", str(tree)).code == 0
    (tree / "b").write_text("b")
    os.utime(tree / "b", (0, 0))  # would be "missing from the snapshot" if these were its files
    done = cli("verify")
    assert done.code == 0, done
    assert "no spot check (the snapshot was taken on elsewhere, not on this host)" in done.stdout


# --- results recorded ---------------------------------------------------------------------------------


def test_each_verify_is_recorded_in_the_repository_per_source(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _init(cli)
    assert cli("backup", "command", "--name", "out.txt", "--", "echo", "hi").code == 0
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a").write_text("a")
    assert cli("backup", str(tmp_path / "tree")).code == 0
    first = json.loads(cli("--json", "verify").stdout)
    assert len(first["records"]) == 2 and first["record"] is None
    by_source = {s["source"]: s["record"] for s in first["snapshots"]}

    listed = json.loads(cli("--json", "records").stdout)["records"]
    assert {(r["kind"], r["source"], r["ok"]) for r in listed} == {
        ("verify", "out.txt", True),
        ("verify", str(tmp_path / "tree"), True),
    }
    assert {r["source"]: r["id"] for r in listed} == by_source
    record = next(r for r in listed if r["source"] == "out.txt")
    assert record["summary"]["snapshots"] == 1 and record["summary"]["failed"] == 0
    assert record["result"]["snapshots"][0]["kind"] == "command"

    second = json.loads(cli("--json", "verify", "--source", "out.txt").stdout)
    assert len(second["records"]) == 1 and second["record"] == second["records"][0]
    only = json.loads(cli("--json", "records", "--source", "out.txt").stdout)["records"]
    assert [r["id"] for r in only] == [second["record"], by_source["out.txt"]]  # newest first
    assert json.loads(cli("--json", "records", "--kind", "drill").stdout)["records"] == []
    text = cli("records")
    assert text.code == 0 and text.stdout.count(" verify ") == 3, text

    # The repository is the truth: a record removed there is gone from the (cached) listing.
    (Path(cli_env["LIFEBOAT_REPO"]) / "records" / second["record"]).unlink()
    again = json.loads(cli("--json", "records", "--source", "out.txt").stdout)["records"]
    assert [r["id"] for r in again] == [by_source["out.txt"]]
    # ... and the history survives the loss of the host's cache.
    shutil.rmtree(cli_env["LIFEBOAT_STATE_DIR"])
    assert len(json.loads(cli("--json", "records").stdout)["records"]) == 2

    # Records are not snapshots: forget and prune leave them alone.
    assert cli("forget", "--keep-last", "1", "--prune").code == 0
    assert len(json.loads(cli("--json", "records").stdout)["records"]) == 2


def test_a_failed_verify_is_recorded_as_failed(cli: Cli, cli_env: dict[str, str]) -> None:
    _init(cli)
    assert cli("backup", "command", "--name", "out.txt", "--", "echo", "hi").code == 0
    bad = "ab" * 32
    (Path(cli_env["LIFEBOAT_REPO"]) / "snapshots" / bad).write_bytes(b"not a snapshot" * 10)
    assert cli("verify").code == 13
    listed = {r["source"]: r for r in json.loads(cli("--json", "records").stdout)["records"]}
    assert listed["out.txt"]["ok"] is True
    assert listed[""]["ok"] is False and bad[:8] in listed[""]["summary"]["problems"][0]


def test_verify_without_a_lock_says_it_recorded_nothing(cli: Cli) -> None:
    _init(cli)
    assert cli("backup", "command", "--name", "out.txt", "--", "echo", "hi").code == 0
    done = cli("verify", "--no-lock")
    assert done.code == 0, done
    assert "warning: the results were not recorded in the repository" in done.stderr
    assert json.loads(cli("--json", "records").stdout)["records"] == []
