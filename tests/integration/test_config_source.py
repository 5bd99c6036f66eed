"""The config source: configuration files stored like files, an inventory beside them, and
``diff --live`` that tells what changed on the host since — never showing a secret."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.repository.repo import Repository
from lifeboat.sources.config.inventory import load
from lifeboat.storage.local import LocalBackend
from tests.conftest import PASSPHRASE, Cli, CliResult

KEY_SECRET = "-----BEGIN PRIVATE KEY-----\nMIIEvQ-the-old-key-material-4f1c\n-----END PRIVATE KEY-----\n"
NEW_KEY_SECRET = "-----BEGIN PRIVATE KEY-----\nMIIEvQ-the-new-key-material-9d2e\n-----END PRIVATE KEY-----\n"
ENV_SECRET = "DB_PASSWORD=hunter2-do-not-print\n"
SECRETS = ("old-key-material", "new-key-material", "hunter2-do-not-print")


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """An /etc-like tree: plain files, a TLS key, an .env file, a symlink, owners and modes."""
    root = tmp_path / "etc"
    (root / "app" / "tls").mkdir(parents=True)
    (root / "app" / "app.conf").write_text("listen = 8080\nworkers = 4\n")
    (root / "app" / "db.conf").write_text("host = db.internal\n")
    (root / "app" / "old.conf").write_text("legacy = yes\n")
    (root / "app" / "tls" / "server.key").write_text(KEY_SECRET)
    (root / "app" / ".env").write_text(ENV_SECRET)
    (root / "app" / "current").symlink_to("app.conf")
    (root / "app" / "tls" / "server.key").chmod(0o600)
    (root / "app" / ".env").chmod(0o640)
    (root / "app" / "db.conf").chmod(0o644)
    shutil.chown(root / "app" / "db.conf", "nobody", "nogroup")
    return root


@pytest.fixture
def lifeboat(cli: Cli, tmp_path: Path, etc: Path) -> Iterator[Cli]:
    config = tmp_path / "lifeboat.yaml"
    config.write_text(json.dumps({"sources": {"etc": {"type": "config", "paths": [str(etc)]}}}))

    def run(*args: str, env: dict[str, str] | None = None, input: bytes | None = None) -> CliResult:
        return cli(*args, env={"LIFEBOAT_CONFIG": str(config), **(env or {})}, input=input)

    assert run("init").code == 0
    yield run


def no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_the_inventory_records_each_entry_with_owner_mode_and_checksum(
    lifeboat: Cli, etc: Path, cli_env: dict[str, str]
) -> None:
    done = lifeboat("--json", "backup", "--source", "etc")
    assert done.code == 0, done
    snapshot = json.loads(done.stdout)["snapshot"]
    assert snapshot["kind"] == "config"
    record = snapshot["extra"]["inventory"]
    assert record["entries"] == 9 and record["files"] == 5 and record["secrets"] == 2
    no_secret_in(done.stdout, done.stderr)

    repo = Repository.open(LocalBackend(cli_env["LIFEBOAT_REPO"]), PASSPHRASE)
    entries = {e.path: e for e in load(repo, repo.resolve_snapshot(snapshot["id"]).extra["inventory"])}
    conf = entries[str(etc / "app" / "app.conf")]
    assert (conf.type, conf.mode, conf.owner, conf.size) == ("file", 0o644, "root", 26)
    assert conf.sha256 == hashlib.sha256(b"listen = 8080\nworkers = 4\n").hexdigest() and not conf.secret
    db = entries[str(etc / "app" / "db.conf")]
    assert (db.owner, db.group) == ("nobody", "nogroup")
    assert entries[str(etc / "app" / "tls" / "server.key")].secret
    assert entries[str(etc / "app" / ".env")].secret and entries[str(etc / "app" / ".env")].mode == 0o640
    assert entries[str(etc / "app" / "current")].target == "app.conf"
    assert entries[str(etc / "app" / "tls")].type == "dir"

    verified = lifeboat("--json", "verify", snapshot["id"])
    assert verified.code == 0, verified
    assert json.loads(verified.stdout)["snapshots"][0]["checked"] == "9 inventory entries against the stored files"


def test_diff_live_lists_exactly_what_changed_and_never_a_secret(lifeboat: Cli, etc: Path) -> None:
    assert lifeboat("backup", "--source", "etc").code == 0
    unchanged = lifeboat("diff", "--live", "etc")
    assert unchanged.code == 0, unchanged
    assert "0 added, 0 removed, 0 with changed content, 0 with changed mode or owner, 0 secrets" in unchanged.stdout

    (etc / "app" / "app.conf").write_text("listen = 9090\nworkers = 4\n")  # same length, other content
    (etc / "app" / "db.conf").chmod(0o600)
    shutil.chown(etc / "app" / "db.conf", "root", "root")
    (etc / "app" / "new.conf").write_text("feature = on\n")
    (etc / "app" / "old.conf").unlink()
    (etc / "app" / "tls" / "server.key").write_text(NEW_KEY_SECRET)

    text = lifeboat("diff", "--live", "etc")
    assert text.code == 0, text
    lines = [line for line in text.stdout.splitlines() if line[:1] in "+-MU*"]
    app = etc / "app"
    assert lines == [
        f"M  {app}/app.conf",
        f"U  {app}/db.conf  (mode 0644 -> 0600, owner nobody -> root, group nogroup -> root)",
        f"+  {app}/new.conf",
        f"-  {app}/old.conf",
        f"*  {app}/tls/server.key  (secret: changed)",
    ]
    assert "1 added, 1 removed, 1 with changed content, 1 with changed mode or owner, 1 secrets changed" in text.stdout

    as_json = lifeboat("--json", "diff", "--live", "etc")
    assert as_json.code == 0, as_json
    doc = json.loads(as_json.stdout)
    assert {(c["change"], c["path"]) for c in doc["changes"]} == {
        ("content", f"{app}/app.conf"),
        ("metadata", f"{app}/db.conf"),
        ("added", f"{app}/new.conf"),
        ("removed", f"{app}/old.conf"),
        ("changed", f"{app}/tls/server.key"),
    }
    secret = next(c for c in doc["changes"] if c["secret"])
    assert secret == {"change": "changed", "path": f"{app}/tls/server.key", "type": "file", "secret": True}
    assert doc["counts"] == {"added": 1, "removed": 1, "content": 1, "metadata": 1, "changed": 1}
    no_secret_in(text.stdout, text.stderr, as_json.stdout, as_json.stderr)

    # --content: a text diff of the changed plain file; the secret only named.
    shown = lifeboat("diff", "--live", "etc", "--content")
    assert shown.code == 0, shown
    assert f"    --- snapshot{app}/app.conf" in shown.stdout and f"    +++ {app}/app.conf" in shown.stdout
    assert "    -listen = 8080" in shown.stdout and "    +listen = 9090" in shown.stdout
    assert f"*  {app}/tls/server.key  (secret: changed; its content is never shown)" in shown.stdout
    shown_json = lifeboat("--json", "diff", "--live", "etc", "--content")
    diffs = {c["path"]: c.get("diff") for c in json.loads(shown_json.stdout)["changes"]}
    assert "+listen = 9090" in diffs[f"{app}/app.conf"] and diffs[f"{app}/tls/server.key"] is None
    no_secret_in(shown.stdout, shown.stderr, shown_json.stdout, shown_json.stderr)

    # Only the secret's mode changes: still only "changed", no detail of what.
    (etc / "app" / ".env").chmod(0o600)
    again = json.loads(lifeboat("--json", "diff", "--live", "etc").stdout)
    env_change = next(c for c in again["changes"] if c["path"].endswith("/.env"))
    assert env_change == {"change": "changed", "path": f"{app}/.env", "type": "file", "secret": True}


def test_diff_live_names_the_snapshot_and_refuses_other_kinds(lifeboat: Cli, etc: Path) -> None:
    first = json.loads(lifeboat("--json", "backup", "--source", "etc").stdout)["snapshot"]["id"]
    (etc / "app" / "new.conf").write_text("x\n")
    second = json.loads(lifeboat("--json", "backup", "--source", "etc").stdout)["snapshot"]["id"]
    against_first = json.loads(lifeboat("--json", "diff", "--live", "etc", first[:8]).stdout)
    assert against_first["snapshot"] == first and against_first["counts"]["added"] == 1
    against_newest = json.loads(lifeboat("--json", "diff", "--live", "etc").stdout)
    assert against_newest["snapshot"] == second and against_newest["counts"]["added"] == 0

    stream = lifeboat("backup", "--stdin", "--source", "dump", input=b"data")
    assert stream.code == 0, stream
    refused = lifeboat("diff", "--live", "dump")
    assert refused.code == 2 and "only files and config backups compare" in refused.stderr, refused
    missing = lifeboat("diff", "--live", "nothing-like-it")
    assert missing.code == 1 and "no snapshot of source 'nothing-like-it'" in missing.stderr


def test_diff_live_works_for_a_files_source_too(lifeboat: Cli, tmp_path: Path) -> None:
    tree = tmp_path / "srv"
    tree.mkdir()
    (tree / "a.txt").write_text("one\n")
    assert lifeboat("backup", "--source", "plain", str(tree)).code == 0
    (tree / "a.txt").write_text("two\n")
    found = json.loads(lifeboat("--json", "diff", "--live", "plain").stdout)
    assert [(c["change"], c["path"]) for c in found["changes"]] == [("content", f"{tree}/a.txt")]


def test_a_restore_lays_the_tree_down_with_its_modes_and_owners(lifeboat: Cli, etc: Path, tmp_path: Path) -> None:
    assert lifeboat("backup", "--source", "etc").code == 0
    target = tmp_path / "restored"
    done = lifeboat("restore", "latest", "--target", str(target))
    assert done.code == 0, done
    for original in [etc, *etc.rglob("*")]:
        copy = target / str(original).lstrip("/")
        st, restored = os.lstat(original), os.lstat(copy)
        assert (restored.st_mode, restored.st_uid, restored.st_gid) == (st.st_mode, st.st_uid, st.st_gid), original
        if original.is_file() and not original.is_symlink():
            assert copy.read_bytes() == original.read_bytes()
    assert os.readlink(target / str(etc / "app" / "current").lstrip("/")) == "app.conf"
