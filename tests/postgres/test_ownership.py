"""Root and the database's OS user share one repository: commands run as root keep it
postgres's, and a file postgres cannot read is reported as a permission problem — by
wal-push, by a base backup waiting for WAL (at once, exit 14, not 13 after the whole wait),
and by ``pg check``, which tests the repository as the server's user. Run as root."""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from tests.postgres.conftest import OS_USER, PgWorld, WorldFactory, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("postgres-ownership"),
    pytest.mark.skipif(os.geteuid() != 0, reason="root and the server's user must differ"),
]


def not_owned_by_server_user(world: PgWorld) -> list[str]:
    entry = pwd.getpwnam(OS_USER)
    found = []
    for directory, dirs, files in os.walk(world.repo_dir):
        for name in [".", *dirs, *files]:
            path = Path(directory, name)
            st = os.lstat(path)
            if (st.st_uid, st.st_gid) != (entry.pw_uid, entry.pw_gid):
                found.append(f"{path.relative_to(world.repo_dir)} ({st.st_uid}:{st.st_gid})")
    return found


def pushers_running(world: PgWorld) -> bool:
    """True while a background WAL pusher (which opened the repository earlier) still runs."""
    for lock in (world.cluster.data_dir / "lifeboat_spool").glob("*/out/worker.lock"):
        with open(lock, "rb") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
    return False


def as_server_user(world: PgWorld, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """This Lifeboat run as the server's OS user, as archive_command runs it."""
    argv = ["runuser", "-u", OS_USER, "--", "env", *(f"{k}={v}" for k, v in world.env.items())]
    argv += [*shlex.split(world.server_command), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, cwd="/")


def test_commands_run_as_root_leave_the_repository_to_postgres_and_archiving_keeps_working(
    worlds: WorldFactory,
) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE t(id int); INSERT INTO t VALUES (1)")
    world.wait_archived(world.switch_wal())
    new_passphrase = world.base / "new-passphrase"
    new_passphrase.write_text("another passphrase\n")
    files = world.base / "files"
    files.mkdir()
    (files / "a.txt").write_bytes(os.urandom(200_000))
    steps: list[tuple[str, list[str], dict[str, str]]] = [
        ("key add", ["key", "add"], {"LIFEBOAT_NEW_PASSWORD_FILE": str(new_passphrase)}),
        ("backup postgres", ["backup", "postgres", *world.conn_args(), "--archive-wait", "60s"], {}),
        ("backup", ["backup", str(files)], {}),
        ("backup again", ["backup", str(files)], {}),
        ("forget", ["forget", "--keep-last", "1"], {}),
        ("prune", ["prune"], {}),
        ("repair index", ["repair", "index"], {}),
        ("unlock", ["unlock"], {}),
    ]
    for step, argv, env in steps:
        if step == "backup again":
            (files / "a.txt").write_bytes(os.urandom(200_000))
        result = world.lifeboat(*argv, env=env)
        assert result.code == 0, (step, result)
        assert not_owned_by_server_user(world) == [], f"after {step} as root"
    c.psql("INSERT INTO t VALUES (2)")
    world.wait_archived(world.switch_wal())  # wal-push, run by the server as postgres, still works
    assert world.lifeboat("key", "list").code == 0


def test_a_file_postgres_cannot_read_is_a_permission_error_for_wal_push_backup_and_pg_check(
    worlds: WorldFactory,
) -> None:
    world = worlds()
    c = world.cluster
    c.psql("CREATE TABLE t(id int); INSERT INTO t VALUES (1)")
    world.wait_archived(world.switch_wal())
    new_passphrase = world.base / "new-passphrase"
    new_passphrase.write_text("another passphrase\n")
    keys_before = set((world.repo_dir / "keys").iterdir())
    assert world.lifeboat("key", "add", env={"LIFEBOAT_NEW_PASSWORD_FILE": str(new_passphrase)}).code == 0
    (key,) = keys_before  # the key the server's passphrase opens; the added one stays readable
    os.chown(key, 0, 0)  # what 'key add' as root used to leave behind (here, on the key that matters)
    os.chmod(key, 0o600)
    # A pusher that opened the repository before keeps archiving until it idles out; the next one fails.
    wait_until(lambda: not pushers_running(world), timeout=60, what="the background pusher's exit")
    hint = f"chown -R {OS_USER}:{OS_USER} {world.repo_dir}"

    # wal-push as the server's user: exit 14, the file, its owner and the fix.
    segment = c.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    pushed = as_server_user(world, "wal-push", "--sync", str(c.data_dir / "pg_wal" / segment))
    assert pushed.returncode == 14, pushed
    assert f"permission denied ({key} is owned by root:root, mode 0600; lifeboat runs as {OS_USER})" in pushed.stderr
    assert hint in pushed.stderr

    # A base backup waiting for its WAL fails as soon as archiving fails, with the archiver's error.
    snapshots_before = json.loads(world.lifeboat("--json", "snapshots").stdout)
    started = time.monotonic()
    backup = world.lifeboat("backup", "postgres", *world.conn_args(), "--archive-wait", "60s")
    took = time.monotonic() - started
    assert backup.code == 14, backup
    assert took < 40, f"the backup waited {took:.0f}s for WAL that archiving could not push"
    assert "the WAL this backup needs cannot reach the repository: archive_command fails on" in backup.stderr
    assert f"{key} is owned by root:root, mode 0600" in backup.stderr
    assert "the backup was not saved" in backup.stderr
    assert hint in backup.stderr
    assert json.loads(world.lifeboat("--json", "snapshots").stdout) == snapshots_before

    # pg check tests the repository as the server's user and names the file.
    checked = world.lifeboat("--json", "pg", "check", *world.conn_args(), "--timeout", "60")
    assert checked.code == 1, checked
    items = {i["check"]: i for i in json.loads(checked.stdout)["checks"]}
    server_user = items["server user"]
    assert server_user["status"] == "failed"
    assert f"cannot read keys/{key.name} (owned by root:root, mode 0600)" in server_user["detail"]
    assert f"chown -R {OS_USER}: {world.repo_dir}" in server_user["hint"]
    assert items["round trip"]["status"] == "failed"
    assert "permission denied" in items["round trip"]["detail"]

    # The documented fix gives the repository back, and everything works again.
    subprocess.run(["chown", "-R", f"{OS_USER}:{OS_USER}", str(world.repo_dir)], check=True)
    world.wait_archived(world.switch_wal(), timeout=120)
    checked = world.lifeboat("--json", "pg", "check", *world.conn_args(), "--timeout", "120")
    assert checked.code == 0, checked
    world.backup()


def test_a_directory_postgres_cannot_list_is_a_permission_error_not_missing_keys(worlds: WorldFactory) -> None:
    world = worlds(start=False)
    keys = world.repo_dir / "keys"
    os.chown(keys, 0, 0)
    os.chmod(keys, 0o700)
    listed = as_server_user(world, "snapshots")
    assert listed.returncode == 14, listed
    assert f"permission denied ({keys} is owned by root:root, mode 0700; lifeboat runs as {OS_USER})" in listed.stderr
    access = as_server_user(world, "--json", "pg", "access")
    assert access.returncode == 14, access
    report = json.loads(access.stdout)
    assert report["problems"] == [{"path": "keys", "need": "read", "owner": "owned by root:root, mode 0700"}]


def test_a_user_whose_files_the_owner_could_not_read_is_refused(worlds: WorldFactory) -> None:
    world = worlds(start=False)
    nobody = pwd.getpwnam("nobody")
    subprocess.run(["chown", "-R", f"{nobody.pw_uid}:{nobody.pw_gid}", str(world.repo_dir)], check=True)
    for directory, _dirs, files in os.walk(world.repo_dir):
        os.chmod(directory, 0o777)  # writable by anyone, yet files stay private
        for name in files:
            os.chmod(Path(directory, name), 0o644)
    data = world.base / "some-data"
    data.mkdir()
    (data / "f").write_text("x")
    refused = as_server_user(world, "backup", str(data))
    assert refused.returncode == 14, refused
    assert f"files written to it as {OS_USER} would be unreadable to nobody" in refused.stderr
    assert not (world.repo_dir / "snapshots").exists()


def test_a_spool_root_creates_below_the_data_directory_belongs_to_the_data_directorys_owner(tmp_path: Path) -> None:
    from lifeboat.sources.postgres.spool import Failure, Spool

    entry = pwd.getpwnam(OS_USER)
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    spool = Spool(data_dir / "lifeboat_spool" / "0011223344556677").ensure()
    spool.mark_pushed("000000010000000000000001")
    spool.mark_push_failed("000000010000000000000002", Failure(14, "denied"))
    lock = spool.push_lock()
    assert lock.try_acquire()
    lock.release()
    spool.log("pushed 000000010000000000000001")
    spool.request("000000010000000000000003")
    owners = {
        str(Path(d, n).relative_to(data_dir)): os.lstat(Path(d, n)).st_uid
        for d, dirs, files in os.walk(data_dir)
        for n in dirs + files
    }
    assert len(owners) >= 9
    assert {path for path, uid in owners.items() if uid != entry.pw_uid} == set()


def test_an_error_reported_by_another_process_keeps_its_class_and_exit_code() -> None:
    from lifeboat.errors import ExitCode, LifeboatError, StoragePermissionDenied, error_from

    denied = error_from(14, "StoragePermissionDenied", "keys/k: permission denied", "chown it")
    assert isinstance(denied, StoragePermissionDenied)
    assert (denied.exit_code, denied.hint) == (ExitCode.STORAGE, "chown it")
    assert denied.message == "keys/k: permission denied"
    unknown = error_from(13, "SomethingElse", "odd")
    assert type(unknown) is LifeboatError and unknown.exit_code == ExitCode.INTEGRITY


def test_the_spools_of_an_archive_command_are_found_where_wal_push_puts_them() -> None:
    from lifeboat.sources.postgres.spool import spool_bases

    data = "/var/lib/postgresql/15/main"
    assert spool_bases("lifeboat wal-push %p", data) == [Path(data, "lifeboat_spool")]
    assert spool_bases("LIFEBOAT_WAL_SPOOL=/run/lb lifeboat wal-push --spool=/srv/s %p", data, "/etc/x") == [
        Path("/run/lb"),
        Path("/srv/s"),
        Path("/etc/x"),
        Path(data, "lifeboat_spool"),
    ]
    assert spool_bases("lifeboat wal-push --spool spool %p", data)[0] == Path(data, "spool")
