"""Hostile or corrupt repository data: clean integrity errors, never a write outside the target."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifeboat.core.ids import BlobType
from lifeboat.core.snapshot import Snapshot
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession
from lifeboat.storage.local import LocalBackend
from tests.conftest import PASSPHRASE, Cli


def open_repo(cli_env: dict[str, str]) -> Repository:
    return Repository.open(LocalBackend(cli_env["LIFEBOAT_REPO"]), PASSPHRASE)


def save_raw_tree_snapshot(repo: Repository, nodes: list[dict[str, object]]) -> str:
    """Store a tree exactly as given (no validation) and a snapshot pointing at it."""
    raw = json.dumps({"version": 1, "nodes": nodes}).encode()
    with repo.lock(exclusive=False, operation="test"), WriteSession(repo) as session:
        file_blob = b"owned!\n"
        file_id = repo.blob_id(file_blob)
        session.save_blob(BlobType.DATA, file_blob, file_id)
        for node in nodes:
            if node.get("type") == "file":
                node["content"] = [file_id.hex()]
                node["size"] = len(file_blob)
        raw = json.dumps({"version": 1, "nodes": nodes}).encode()
        tree_id = repo.blob_id(raw)
        session.save_blob(BlobType.TREE, raw, tree_id)
        session.commit()
    snapshot = Snapshot(time=datetime.now(UTC), source="evil", kind="files", tree=tree_id, hostname="x")
    return repo.save_snapshot(snapshot).id


@pytest.mark.parametrize("name", ["..", "../../escaped.txt", "/tmp/escaped-absolute.txt", "a/../../b", "."])
def test_a_tree_with_an_escaping_name_is_refused_and_writes_nothing_outside(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path, name: str
) -> None:
    assert cli("init").code == 0
    repo = open_repo(cli_env)
    snapshot_id = save_raw_tree_snapshot(repo, [{"name": name, "type": "file", "mode": 0o644, "content": []}])
    target = tmp_path / "sandbox" / "target"
    target.parent.mkdir()
    before = set(os.listdir(tmp_path / "sandbox"))
    result = cli("restore", snapshot_id, "--target", str(target))
    assert result.code == 13, result
    assert "unsafe name" in result.stderr
    assert "Traceback" not in result.stderr
    assert set(os.listdir(tmp_path / "sandbox")) == before | ({"target"} if target.exists() else set())
    assert not Path("/tmp/escaped-absolute.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_a_planted_symlink_in_the_target_is_replaced_not_followed(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "conf").mkdir(parents=True)
    (source / "conf" / "app.ini").write_text("setting=1\n")
    assert cli("init").code == 0
    assert cli("backup", str(source)).code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "conf")  # an attacker's link where a directory will be restored
    (target / "other").write_text("x")
    refused = cli("restore", f"latest:{source}", "--target", str(target))
    assert refused.code == 1 and "is not empty" in refused.stderr
    forced = cli("restore", f"latest:{source}", "--target", str(target), "--force")
    assert forced.code == 0, forced
    assert os.listdir(outside) == []
    assert not (target / "conf").is_symlink()
    assert (target / "conf" / "app.ini").read_text() == "setting=1\n"


def test_symlinks_in_a_snapshot_are_restored_as_links_and_never_followed(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert cli("init").code == 0
    repo = open_repo(cli_env)
    snapshot_id = save_raw_tree_snapshot(
        repo,
        [
            {"name": "escape", "type": "symlink", "mode": 0o777, "target": str(tmp_path / "outside")},
            {"name": "file", "type": "file", "mode": 0o644},
        ],
    )
    (tmp_path / "outside").mkdir()
    target = tmp_path / "target"
    assert cli("restore", snapshot_id, "--target", str(target)).code == 0
    assert os.readlink(target / "escape") == str(tmp_path / "outside")
    assert os.listdir(tmp_path / "outside") == []


def corrupt_one(directory: Path, how: str) -> Path:
    victim = sorted(p for p in directory.rglob("*") if p.is_file())[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2] if how == "truncate" else os.urandom(len(data)))
    return victim


@pytest.mark.parametrize("how", ["truncate", "garbage"])
@pytest.mark.parametrize(
    ("folder", "command"),
    [
        ("snapshots", ("snapshots",)),
        ("index", ("ls", "latest")),
        ("data", ("restore", "latest", "--target", "{tmp}/out")),
    ],
)
def test_truncated_or_garbage_objects_give_a_clean_integrity_error(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path, how: str, folder: str, command: tuple[str, ...]
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "f").write_bytes(os.urandom(100_000))
    assert cli("init").code == 0
    assert cli("backup", str(source)).code == 0
    corrupt_one(Path(cli_env["LIFEBOAT_REPO"]) / folder, how)
    result = cli(*(part.replace("{tmp}", str(tmp_path)) for part in command))
    assert result.code == 13, result
    assert "lifeboat: error: " in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert cli("check", "--read-data").code == 13


@pytest.mark.parametrize("victim", ["config", "keys"])
def test_a_damaged_header_or_key_file_is_reported_cleanly(cli: Cli, cli_env: dict[str, str], victim: str) -> None:
    assert cli("init").code == 0
    repo = Path(cli_env["LIFEBOAT_REPO"])
    path = repo / "config" if victim == "config" else next((repo / "keys").iterdir())
    path.write_bytes(b"\x00garbage\xff")
    result = cli("snapshots")
    assert result.code in (10, 13), result
    assert result.stderr.startswith("lifeboat: error: ")
    assert "Traceback" not in result.stderr


def test_a_tampered_header_is_refused_after_unlocking(cli: Cli, cli_env: dict[str, str]) -> None:
    assert cli("init").code == 0
    header = Path(cli_env["LIFEBOAT_REPO"]) / "config"
    doc = json.loads(header.read_text())
    doc["pack_size"] = doc["pack_size"] // 2
    header.write_text(json.dumps(doc))
    result = cli("snapshots")
    assert result.code == 13, result
    assert "MAC check" in result.stderr
