"""Every repository command a user runs daily, through the CLI, on every remote backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.replication.test_copy import contents, make_tree
from tests.servers.fixtures import Server
from tests.storage.remote import fresh_url

FAST_INIT = ("init", "--kdf-memory", "8MiB", "--kdf-iterations", "1")


@pytest.mark.parametrize("kind", ["moto", "rclone", "azurite", "gcs", "sshd"])
def test_init_backup_restore_check_forget_prune(
    kind: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    server: Server = request.getfixturevalue(f"{kind}_server")
    url = fresh_url(kind, server, monkeypatch)
    env = {**cli_env, **server.env, "LIFEBOAT_REPO": url}
    created = run_cli("--json", *FAST_INIT, env=env)
    assert created.code == 0, created
    location = json.loads(created.stdout)["location"]
    assert "?" not in location and "identity" not in location
    tree = tmp_path / "data"
    make_tree(tree, seed=31)
    assert run_cli("backup", str(tree), env=env).code == 0
    (tree / "etc" / "added.conf").write_text("added\n")
    second = run_cli("--json", "backup", str(tree), env=env)
    assert second.code == 0, second
    assert json.loads(second.stdout)["files_new"] == 1

    target = tmp_path / "restored"
    restored = run_cli("restore", "latest", "--target", str(target), env=env)
    assert restored.code == 0, restored
    assert contents(target / tree.relative_to("/")) == contents(tree)

    assert run_cli("forget", "--keep-last", "1", env=env).code == 0
    pruned = run_cli("prune", "--safety-margin", "0s", env=env)
    assert pruned.code == 0, pruned
    checked = run_cli("check", "--read-data", env=env)
    assert checked.code == 0, checked
    assert "no errors were found" in checked.stdout
    assert len(json.loads(run_cli("--json", "snapshots", env=env).stdout)) == 1
