"""The ldap source against a real slapd: slapcat per database into the repository, slapadd back
into a stopped server — the entries a user searches for are the same afterwards."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from lifeboat.core.ids import BlobType
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Tree
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession
from lifeboat.storage.local import LocalBackend
from tests.conftest import PASSPHRASE, Cli, CliResult
from tests.servers.slapd import SUFFIX, USER, Slapd, people, slapd

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ldap")]
__all__ = ["slapd"]


@pytest.fixture
def lifeboat(cli: Cli, cli_env: dict[str, str], tmp_path: Path, slapd: Slapd) -> Iterator[Cli]:
    """The CLI with a repository and a configuration naming the slapd as source ``directory``
    (and a source whose configuration directory does not exist, ``broken``)."""
    config = tmp_path / "lifeboat.yaml"
    config.write_text(
        json.dumps(
            {
                "sources": {
                    "directory": {"type": "ldap", "config_dir": str(slapd.config_dir)},
                    "broken": {"type": "ldap", "config_dir": str(tmp_path / "no-such-slapd.d")},
                }
            }
        )
    )

    def run(*args: str, env: dict[str, str] | None = None, input: bytes | None = None) -> CliResult:
        return cli(*args, env={"LIFEBOAT_CONFIG": str(config), **(env or {})}, input=input)

    assert run("init").code == 0
    yield run
    if not slapd.running:  # a failed test must not leave the session's server down
        slapd.start()


def backed_up(lifeboat: Cli) -> dict[str, object]:
    done = lifeboat("--json", "backup", "--source", "directory")
    assert done.code == 0, done
    snapshot: dict[str, object] = json.loads(done.stdout)["snapshot"]
    return snapshot


def owned_by_server_user(*directories: Path) -> list[str]:
    """Files below ``directories`` that slapd's user does not own (should be none)."""
    wrong = []
    for directory in directories:
        for root, dirs, files in os.walk(directory):
            for name in [*dirs, *files]:
                path = Path(root) / name
                if path.owner() != USER:
                    wrong.append(f"{path} ({path.owner()})")
    return wrong


def test_entries_are_the_same_after_backup_stop_wipe_restore_start(lifeboat: Cli, slapd: Slapd) -> None:
    before = slapd.search()
    snapshot = backed_up(lifeboat)
    assert snapshot["kind"] == "ldap"
    record = snapshot["extra"]["ldap"]  # type: ignore[index]
    databases = {d["number"]: d for d in record["databases"]}
    assert set(databases) == {0, 1}
    assert databases[1]["suffix"] == SUFFIX and databases[1]["entries"] == 52  # the suffix, ou=people, 50 people
    assert databases[0]["file"] == "db-0.ldif" and databases[0]["entries"] > 5
    listed = lifeboat("ls", str(snapshot["id"]))
    assert "db-0.ldif" in listed.stdout and "db-1.ldif" in listed.stdout

    slapd.stop()
    for name in ("data.mdb", "lock.mdb"):
        (slapd.data_dir / name).unlink(missing_ok=True)
    restored = lifeboat("restore", "ldap", "latest", "--source", "directory", "--database", "1")
    assert restored.code == 0, restored
    assert "loaded database 1 (dc=example,dc=org: 52 entries)" in restored.stdout
    assert owned_by_server_user(slapd.data_dir) == []
    slapd.start()
    assert slapd.search() == before


def test_a_whole_server_is_rebuilt_from_an_empty_config_directory_config_first(lifeboat: Cli, slapd: Slapd) -> None:
    before = slapd.search()
    backed_up(lifeboat)
    slapd.stop()
    shutil.rmtree(slapd.config_dir)
    shutil.rmtree(slapd.data_dir)
    slapd.config_dir.mkdir()  # empty, root's: as on a new host; slapadd runs as the user the backup recorded

    restored = lifeboat("--json", "restore", "ldap", "latest", "--source", "directory")
    assert restored.code == 0, restored.stdout
    loaded = json.loads(restored.stdout)["databases"]
    assert [d["number"] for d in loaded] == [0, 1]  # the configuration first, then the data
    assert slapd.data_dir.is_dir()  # made for the restored configuration, which names it
    assert slapd.config_dir.owner() == USER
    assert owned_by_server_user(slapd.config_dir, slapd.data_dir) == []
    slapd.start()
    assert slapd.search() == before


def test_a_restore_is_refused_while_slapd_runs_and_over_entries_without_force(lifeboat: Cli, slapd: Slapd) -> None:
    backed_up(lifeboat)
    slapd.add(people(3, start=1000))  # entries the snapshot does not have
    after_backup = slapd.search()

    running = lifeboat("restore", "ldap", "latest", "--source", "directory", "--database", "1", "--force")
    assert running.code == 1, running
    assert "slapd is running (pid" in running.stderr and "stop slapd first" in running.stderr
    assert slapd.search() == after_backup

    slapd.stop()
    refused = lifeboat("restore", "ldap", "latest", "--source", "directory", "--database", "1")
    assert refused.code == 1, refused
    assert "database 1 (dc=example,dc=org) already holds entries" in refused.stderr
    assert "--force" in refused.stderr
    config_refused = lifeboat("restore", "ldap", "latest", "--source", "directory", "--database", "0")
    assert config_refused.code == 1 and "is not empty" in config_refused.stderr, config_refused

    forced = lifeboat("--json", "restore", "ldap", "latest", "--source", "directory", "--database", "1", "--force")
    assert forced.code == 0, forced
    assert str(slapd.data_dir / "data.mdb") in json.loads(forced.stdout)["emptied"]
    slapd.start()
    assert len(slapd.search()) < len(after_backup)
    assert not [line for line in slapd.search() if "user1000" in line]  # back to the snapshot's entries


def test_a_failing_slapcat_is_exit_16_and_saves_no_snapshot(lifeboat: Cli) -> None:
    before = json.loads(lifeboat("--json", "snapshots").stdout)
    failed = lifeboat("backup", "--source", "broken")
    assert failed.code == 16, failed
    assert "slapcat failed (exit status 1)" in failed.stderr
    assert json.loads(lifeboat("--json", "snapshots").stdout) == before


def test_restore_ldap_refuses_a_snapshot_of_another_kind(lifeboat: Cli, slapd: Slapd) -> None:
    other = lifeboat("--json", "backup", "--stdin", "--source", "notes", input=b"not ldap")
    assert other.code == 0, other
    refused = lifeboat("restore", "ldap", json.loads(other.stdout)["snapshot"]["id"][:8])
    assert refused.code == 2, refused
    assert "is a stdin backup, not an ldap one" in refused.stderr


def test_a_database_that_is_not_configured_is_exit_16(lifeboat: Cli, slapd: Slapd, tmp_path: Path) -> None:
    config = tmp_path / "only.yaml"
    config.write_text(
        json.dumps({"sources": {"d": {"type": "ldap", "config_dir": str(slapd.config_dir), "databases": [7]}}})
    )
    failed = lifeboat("backup", "--source", "d", env={"LIFEBOAT_CONFIG": str(config)})
    assert failed.code == 16, failed
    assert "has no database 7 to dump (it has 0, 1)" in failed.stderr


def test_verify_passes_and_fails_on_a_damaged_dump(lifeboat: Cli, cli_env: dict[str, str]) -> None:
    snapshot = backed_up(lifeboat)
    ok = lifeboat("--json", "verify", str(snapshot["id"]))
    assert ok.code == 0, ok
    assert json.loads(ok.stdout)["snapshots"][0]["checked"] == (
        "each database's LDIF and its count of entries, and slapadd -u of each into the stored configuration"
    )

    repo = Repository.open(LocalBackend(cli_env["LIFEBOAT_REPO"]), PASSPHRASE)
    good = repo.resolve_snapshot(str(snapshot["id"]))

    # A cut dump: a whole repository, a wrong dump.
    cut = with_database_1(repo, good, lambda data: data[: data.index(b"\n\ndn: uid=user10,") + 2])
    failed = lifeboat("--json", "verify", cut)
    assert failed.code == 13, failed
    assert json.loads(failed.stdout)["snapshots"][0]["problems"] == ["db-1.ldif: 12 entries, the backup counted 52"]

    # As many entries, good LDIF, but one the schema refuses: slapadd -u finds it.
    def unknown_class(data: bytes) -> bytes:
        at = data.index(b"dn: uid=user5,")
        return data[:at] + data[at:].replace(b"objectClass: inetOrgPerson", b"objectClass: noSuchPerson", 1)

    refused = lifeboat("--json", "verify", with_database_1(repo, good, unknown_class))
    assert refused.code == 13, refused
    (problem,) = json.loads(refused.stdout)["snapshots"][0]["problems"]
    assert problem.startswith("db-1.ldif: slapadd -u refuses it: ")
    assert "slapadd failed (exit status 1)" in problem and "unrecognized objectClass 'noSuchPerson'" in problem


def with_database_1(repo: Repository, good: Snapshot, change: Callable[[bytes], bytes]) -> str:
    """A new snapshot like ``good`` whose db-1.ldif is ``change``d; its id."""
    with WriteSession(repo, workers=1) as session:
        nodes = []
        for node in repo.load_tree(good.tree).nodes:
            if node.name == "db-1.ldif":
                data = change(b"".join(repo.load_blobs(node.content)))
                blob = session.blob_id(data)
                session.save_blob(BlobType.DATA, data, blob)
                nodes.append(replace(node, content=(blob,), size=len(data)))
            else:
                nodes.append(node)
        tree = session.save_tree(Tree(tuple(nodes)))
        session.commit()
    return repo.save_snapshot(replace(good, tree=tree, id="")).id


def test_a_slapd_conf_source_backs_up_and_restores_its_data_databases(cli: Cli, tmp_path: Path) -> None:
    """An old slapd.conf (slapd -f): the databases come from the file (slapcat has no database 0
    to dump from one), the data databases round-trip through slapcat and slapadd."""
    import subprocess
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="lifeboat-slapdconf-", dir="/tmp"))
    try:
        (base / "data").mkdir()
        conf = base / "slapd.conf"
        conf.write_text(
            "include /etc/ldap/schema/core.schema\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n"
            f'pidfile {base}/slapd.pid\n\ndatabase mdb\nsuffix "dc=example,dc=org"\n'
            f'rootdn "cn=admin,dc=example,dc=org"\ndirectory {base}/data\n'
        )
        for path in (base, base / "data", conf):
            shutil.chown(path, USER, USER)
        entries = "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n"
        entries += "\ndn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n"
        loaded = subprocess.run(
            [
                "setpriv",
                f"--reuid={USER}",
                f"--regid={USER}",
                "--clear-groups",
                "/usr/sbin/slapadd",
                "-f",
                str(conf),
                "-n",
                "1",
            ],
            input=entries.encode(),
            capture_output=True,
            check=False,
        )
        assert loaded.returncode == 0, loaded.stderr
        config = tmp_path / "conf.yaml"
        config.write_text(json.dumps({"sources": {"old": {"type": "ldap", "config_file": str(conf)}}}))
        env = {"LIFEBOAT_CONFIG": str(config)}
        assert cli("init", env=env).code == 0
        done = cli("--json", "backup", "--source", "old", env=env)
        assert done.code == 0, done
        record = json.loads(done.stdout)["snapshot"]["extra"]["ldap"]
        assert [(d["number"], d["suffix"], d["entries"]) for d in record["databases"]] == [(1, SUFFIX, 2)]
        assert record["pid_file"] == f"{base}/slapd.pid"

        (base / "data" / "data.mdb").unlink()
        (base / "data" / "lock.mdb").unlink(missing_ok=True)
        restored = cli("restore", "ldap", "latest", "--source", "old", env=env)
        assert restored.code == 0, restored
        assert owned_by_server_user(base / "data") == []
        dumped = subprocess.run(
            [
                "setpriv",
                f"--reuid={USER}",
                f"--regid={USER}",
                "--clear-groups",
                "/usr/sbin/slapcat",
                "-f",
                str(conf),
                "-n",
                "1",
            ],
            capture_output=True,
            check=False,
        )
        assert dumped.returncode == 0, dumped.stderr
        assert [line for line in dumped.stdout.decode().splitlines() if line.startswith("dn:")] == [
            "dn: dc=example,dc=org",
            "dn: ou=people,dc=example,dc=org",
        ]
        refused = cli("restore", "ldap", "latest", "--source", "old", "--database", "0", env=env)
        assert refused.code == 2 and "holds no database 0" in refused.stderr, refused
    finally:
        shutil.rmtree(base, ignore_errors=True)
