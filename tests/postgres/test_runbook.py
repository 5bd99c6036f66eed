"""docs/runbook.md, run: each disaster procedure of the operations runbook, with the same
commands in the same order, through the command line as an operator types them, against a
real cluster archiving into a real repository (set up as the runbook assumes: a
configuration file naming the repository ``main``, a follower ``offsite`` and the source
``db``, archive_command written by ``pg setup --apply``).

The runbook points at each test by name; change them together.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive
from lifeboat.sources.postgres.pgdata import read_system_id
from lifeboat.sources.tools.pg import find_program
from lifeboat.sources.tools.pgcluster import ScratchCluster, chown_tree, free_port
from lifeboat.storage.local import LocalBackend
from tests.conftest import CliResult
from tests.postgres.conftest import OS_USER, PgWorld, WorldFactory, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-runbook")]

OFFSITE_PASSPHRASE = b"a different passphrase for the offsite copy"
NEW_PASSPHRASE = b"the new server passphrase"
FAST_INIT = ("init", "--kdf-memory", "8MiB", "--kdf-iterations", "1")


@dataclass
class Operator:
    """The runbook's set-up: /etc/lifeboat.yaml with ``main``, ``offsite`` and the source ``db``."""

    world: PgWorld
    config: Path
    offsite_dir: Path
    offsite_password: Path

    @property
    def env(self) -> dict[str, str]:
        # As `export LIFEBOAT_CONFIG=/etc/lifeboat.yaml`: everything else comes from the file.
        return {"LIFEBOAT_CONFIG": str(self.config), "LIFEBOAT_REPO": "", "LIFEBOAT_PASSWORD_FILE": ""}

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        return self.world.lifeboat(*args, env={**self.env, **(env or {})}, timeout=600)

    def json(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, object]:
        result = self("--json", *args, env=env)
        return result.code, json.loads(result.stdout)

    def write_config(
        self, *, main: bool = True, offsite_follows: bool = True, default: str = "main", newsite: Path | None = None
    ) -> None:
        w = self.world
        c = w.cluster
        repositories = ""
        if main:
            repositories += f"  main:\n    url: {w.repo_dir}\n    password_file: {w.password_file}\n"
        repositories += f"  offsite:\n    url: {self.offsite_dir}\n    password_file: {self.offsite_password}\n"
        if offsite_follows:
            repositories += "    follows: main\n"
        if newsite is not None:  # a new replica of the promoted one (its own passphrase in real life)
            repositories += f"  newsite:\n    url: {newsite}\n    password_file: {w.password_file}\n"
            repositories += "    follows: offsite\n"
        self.config.write_text(
            f"version: 1\ndefault_repository: {default}\nrepositories:\n{repositories}"
            "sources:\n"
            "  db:\n"
            "    type: postgres\n"
            f"    data_directory: {c.data_dir}\n"
            f"    host: {c.socket_dir}\n"
            f"    port: {c.port}\n"
            "    user: postgres\n"
        )
        chown_tree(self.config, OS_USER)


def operator(world: PgWorld, *, offsite: bool = False) -> Operator:
    """Write the configuration and let ``pg setup --apply`` write archive_command (a reload:
    the fixture's cluster already has archive_mode on)."""
    secrets = world.base / "secrets"
    secrets.mkdir()
    offsite_password = secrets / "offsite.pass"
    offsite_password.write_bytes(OFFSITE_PASSPHRASE + b"\n")
    offsite_password.chmod(0o600)
    chown_tree(secrets, OS_USER)
    ops = Operator(world, world.base / "lifeboat.yaml", world.base / "offsite", offsite_password)
    ops.write_config()
    if offsite:
        ops.offsite_dir.mkdir(mode=0o700)
        chown_tree(ops.offsite_dir, OS_USER)  # the server's user archives into it after a promotion
        made = ops("-r", "offsite", *FAST_INIT)
        assert made.code == 0, made
    applied = ops("pg", "setup", "--source", "db", "--apply")
    assert applied.code == 0, applied
    archive_command = world.cluster.psql("SHOW archive_command")
    assert f"--config {ops.config}" in archive_command and "wal-push --source db" in archive_command
    return ops


def archive_now(world: PgWorld, cluster: ScratchCluster | None = None) -> str:
    """Finish the current WAL segment and wait until it is in the repository."""
    name = world.switch_wal(cluster)
    world.wait_archived(name)
    return name


def pipe(producer: list[str], consumer: list[str]) -> None:
    """``PRODUCER | CONSUMER``, two PostgreSQL client programs as the runbook writes them."""
    first = subprocess.Popen([find_program(producer[0]), *producer[1:]], stdout=subprocess.PIPE)
    assert first.stdout is not None
    second = subprocess.run(
        [find_program(consumer[0]), *consumer[1:]], stdin=first.stdout, capture_output=True, check=False, timeout=120
    )
    first.stdout.close()
    assert first.wait(timeout=120) == 0
    assert second.returncode == 0, second.stderr


def at(cluster: ScratchCluster, port: int | None = None) -> list[str]:
    """libpq options reaching ``cluster`` (or a copy of it listening on ``port``)."""
    return ["-h", str(cluster.socket_dir), "-p", str(port or cluster.port), "-U", "postgres"]


def wait_archived(world: PgWorld, repo_dir: Path, passphrase: bytes, name: str) -> None:
    """Wait until WAL file ``name`` is in the repository at ``repo_dir`` (not the fixture's)."""
    archive = WalArchive(Repository.open(LocalBackend(repo_dir), passphrase), read_system_id(world.cluster.data_dir))
    wait_until(lambda: archive.exists(name), timeout=60, what=f"{name} archived in {repo_dir}")


def live_timeline(info: object) -> int:
    assert isinstance(info, dict)
    (cluster,) = info["clusters"]
    return next(t["timeline"] for t in cluster["wal"]["timelines"] if t["live"])


def status(info: object) -> tuple[str, str | None]:
    assert isinstance(info, dict)
    (cluster,) = info["clusters"]
    return cluster["status"], cluster["gap"]


# --- 1. The primary is lost ------------------------------------------------------------------------


def test_primary_lost_restore_latest_with_archiving_and_a_new_base_backup(worlds: WorldFactory) -> None:
    world = worlds()
    ops = operator(world)
    c = world.cluster
    c.psql("CREATE TABLE orders(id int PRIMARY KEY, note text)")
    c.psql("INSERT INTO orders SELECT g, 'before the backup' FROM generate_series(1, 1000) g")
    assert ops("backup", "postgres", "--source", "db").code == 0
    c.psql("INSERT INTO orders SELECT g, 'after the backup' FROM generate_series(1001, 1500) g")
    archive_now(world)
    c.psql("INSERT INTO orders VALUES (9999, 'never archived')")  # in the unfinished segment
    c.stop("immediate")
    shutil.rmtree(c.data_dir)  # the disaster

    # 1. What can come back.
    info = ops("pg", "info")
    assert info.code == 0, info
    assert "recoverable on timeline 1" in info.stdout and "<- live" in info.stdout

    # 2-3. (Nothing left to move aside.) Plan, then restore the latest state into the server's
    #      place, archiving on; no --port: the server's own.
    planned = ops("restore", "postgres", "--source", "db", "--target-dir", str(c.data_dir), "--archive", "--plan")
    assert planned.code == 0 and "feasible: nothing was written" in planned.stdout, planned
    assert ": all present" in planned.stdout and not c.data_dir.exists()
    restored = ops("restore", "postgres", "--source", "db", "--target-dir", str(c.data_dir), "--archive", "--start")
    assert restored.code == 0, restored
    assert "promoted" in restored.stdout
    assert c.psql("SELECT count(*) FROM orders") == "1500"
    assert c.psql("SELECT count(*) FROM orders WHERE id = 9999") == "0"  # the unarchived segment is lost
    assert c.psql("SHOW archive_mode") == "on"

    # 4. Archiving works again, on the new timeline.
    checked = ops("pg", "check", "--source", "db")
    assert checked.code == 0, checked
    assert "archiving works" in checked.stdout

    # 5. A base backup on the new timeline; the window is whole.
    assert ops("backup", "postgres", "--source", "db").code == 0
    code, info_json = ops.json("pg", "info")
    assert code == 0 and status(info_json) == ("ok", None)
    assert live_timeline(info_json) == 2


# --- 2. A bad DELETE or DROP --------------------------------------------------------------------------


def test_bad_delete_and_drop_restore_a_copy_extract_the_rows_or_rewind(worlds: WorldFactory) -> None:
    world = worlds()
    ops = operator(world)
    c = world.cluster
    c.psql("CREATE TABLE orders(id int PRIMARY KEY, note text)")
    c.psql("CREATE TABLE customers(id int PRIMARY KEY, name text)")
    c.psql("INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 1000) g")
    c.psql("INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g")
    assert ops("backup", "postgres", "--source", "db").code == 0
    c.psql("INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1001, 1200) g")
    before_accident = c.psql("SELECT clock_timestamp()")
    c.psql("DELETE FROM orders WHERE id > 600")  # the accident: a DELETE without its WHERE clause's half
    c.psql("DROP TABLE customers")  # and a DROP
    c.psql("INSERT INTO orders VALUES (5000, 'after the accident')")  # work that goes on
    archive_now(world)

    # 1-2. A copy at the moment before the accident, beside production, not archiving; planned first.
    copy_dir, copy_port = world.new_dir("pg-copy"), free_port()
    planned = ops(
        "restore", "postgres", "--source", "db", "--target-dir", str(copy_dir), "--time", before_accident, "--plan"
    )
    assert planned.code == 0 and ": all present" in planned.stdout and not copy_dir.exists(), planned
    made = ops(
        "restore", "postgres", "--source", "db", "--target-dir", str(copy_dir),
        "--time", before_accident, "--start", "--port", str(copy_port),
    )  # fmt: skip
    assert made.code == 0, made
    copy = world.restored(copy_dir, copy_port)
    assert copy.psql("SELECT count(*), max(id) FROM orders") == "1200|1200"
    assert copy.psql("SELECT count(*) FROM customers") == "50"
    assert copy.psql("SHOW archive_mode") == "off"

    # 3a. Extract: the dropped table whole, the deleted rows by query.
    pipe(["pg_dump", *at(c, copy_port), "--table=customers", "postgres"], ["psql", "-X", "-q", *at(c), "postgres"])
    pipe(
        ["psql", "-X", *at(c, copy_port), "postgres", "-c", "COPY (SELECT * FROM orders WHERE id > 600) TO STDOUT"],
        ["psql", "-X", *at(c), "postgres", "-c", "COPY orders FROM STDIN"],
    )
    assert c.psql("SELECT count(*) FROM orders") == "1201"  # 1200 back, and the later order kept
    assert c.psql("SELECT count(*) FROM customers") == "50"
    copy.stop()
    shutil.rmtree(copy_dir)
    code, info = ops.json("pg", "info")
    assert code == 0 and status(info) == ("ok", None)
    assert live_timeline(info) == 1  # the copy archived nothing: production's timeline stays live

    # 3b. Or rewind production itself to that moment (everything after it is given up).
    c.stop()
    aside = world.new_dir("main.before-rewind")
    os.rename(c.data_dir, aside)
    rewound = ops(
        "restore", "postgres", "--source", "db", "--target-dir", str(c.data_dir),
        "--time", before_accident, "--archive", "--start",
    )  # fmt: skip
    assert rewound.code == 0, rewound
    assert c.psql("SELECT count(*), max(id) FROM orders") == "1200|1200"
    assert c.psql("SELECT count(*) FROM customers") == "50"
    checked = ops("pg", "check", "--source", "db")
    assert checked.code == 0, checked
    assert ops("backup", "postgres", "--source", "db").code == 0
    code, info = ops.json("pg", "info")
    assert code == 0 and status(info) == ("ok", None)
    assert live_timeline(info) == 2


# --- 3. The repository's site is lost ------------------------------------------------------------------


def test_repository_site_lost_promote_the_replica_made_by_copy(worlds: WorldFactory) -> None:
    world = worlds()
    ops = operator(world, offsite=True)
    c = world.cluster
    c.psql("CREATE TABLE orders(id int PRIMARY KEY, note text)")
    c.psql("INSERT INTO orders SELECT g, 'copied' FROM generate_series(1, 1000) g")
    assert ops("backup", "postgres", "--source", "db").code == 0
    archive_now(world)
    copied = ops("copy")  # the nightly job: bring every follower up to date
    assert copied.code == 0, copied
    c.psql("INSERT INTO orders SELECT g, 'archived to main only' FROM generate_series(1001, 1100) g")
    archive_now(world)
    shutil.rmtree(world.repo_dir)  # the disaster: main is gone with everything it held

    # 1. Main is gone; the replica is whole and says what it can recover.
    gone = ops("snapshots")
    assert gone.code == 10, gone
    checked = ops("-r", "offsite", "check", "--read-data")
    assert checked.code == 0, checked
    code, info = ops.json("-r", "offsite", "pg", "info")
    assert code == 0 and status(info) == ("ok", None)
    # A drill restore from the replica, main still in the configuration but gone. (Before, the
    # copy's restore_command left the replica's name out and fetched WAL from main.)
    drill_dir, drill_port = world.new_dir("drill-offsite"), free_port()
    drill = ops("-r", "offsite", "restore", "postgres", "--source", "db", "--target-dir", str(drill_dir),
                "--start", "--port", str(drill_port))  # fmt: skip
    assert drill.code == 0, drill
    assert "--repo offsite wal-fetch --source db" in (drill_dir / "postgresql.auto.conf").read_text()
    copy = world.restored(drill_dir, drill_port)
    assert copy.psql("SELECT count(*) FROM orders") == "1000"  # what was copied; main's last WAL is lost
    copy.stop()

    # 2. Promote it: offsite is the default repository and follows nothing (archive_command
    #    names the configuration, so the server archives into it from its next segment on).
    ops.write_config(main=False, offsite_follows=False, default="offsite")
    checked = ops("pg", "check", "--source", "db")
    assert checked.code == 0, checked
    assert str(ops.offsite_dir) in checked.stdout
    code, info = ops.json("pg", "info")
    assert code == 13 and status(info)[0] == "gap"  # the WAL only main had is lost

    # 3. A new base backup re-establishes the window.
    assert ops("backup", "postgres", "--source", "db").code == 0
    c.psql("INSERT INTO orders VALUES (5000, 'after the promotion')")
    wait_archived(world, ops.offsite_dir, OFFSITE_PASSPHRASE, world.switch_wal())
    code, info = ops.json("pg", "info")
    assert code == 0 and status(info) == ("ok", None)

    # 4. A new replica of the promoted repository.
    newsite = world.base / "newsite"
    ops.write_config(main=False, offsite_follows=False, default="offsite", newsite=newsite)
    assert ops("-r", "newsite", *FAST_INIT).code == 0
    copied = ops("copy")
    assert copied.code == 0, copied
    code, document = ops.json("-r", "newsite", "snapshots")
    assert code == 0 and isinstance(document, list) and len(document) == 2
    code, info = ops.json("-r", "newsite", "pg", "info")
    assert code == 0 and status(info) == ("ok", None)


# --- 4. A passphrase or key is lost --------------------------------------------------------------------


def test_passphrase_lost_a_second_key_opens_the_repository_and_replaces_it(worlds: WorldFactory) -> None:
    world = worlds()
    ops = operator(world)
    c = world.cluster
    secrets = world.base / "secrets"
    recovery = secrets / "recovery.pass"  # kept away from the server (a safe, a password manager)
    recovery.write_text("the recovery passphrase, kept offline\n")
    recovery.chmod(0o600)

    # Before anything goes wrong: a second key, and a copy of the key files and the header.
    added = ops("key", "add", env={"LIFEBOAT_NEW_PASSWORD_FILE": str(recovery)})
    assert added.code == 0, added
    code, keys = ops.json("key", "list")
    assert code == 0 and isinstance(keys, list) and len(keys) == 2
    lost_key = next(k["id"] for k in keys if k["current"])
    saved = world.base / "saved-keys"
    shutil.copytree(world.repo_dir / "keys", saved / "keys")
    shutil.copy2(world.repo_dir / "config", saved / "config")

    c.psql("CREATE TABLE orders(id int PRIMARY KEY)")
    c.psql("INSERT INTO orders SELECT generate_series(1, 100)")
    assert ops("backup", "postgres", "--source", "db").code == 0
    archive_now(world)

    # The disaster: the server's passphrase file is gone, and nobody remembers it.
    world.password_file.unlink()
    c.psql("INSERT INTO orders SELECT generate_series(101, 200)")
    broken = ops("pg", "check", "--source", "db")
    assert broken.code == 1, broken
    assert "FAIL  repository: repository passphrase file" in broken.stdout
    nothing = ops("snapshots")
    assert nothing.code == 2, nothing  # no passphrase at all

    # What does not open it: a wrong passphrase is exit 12 for every key.
    guess = secrets / "guess.pass"
    guess.write_text("a guess\n")
    wrong = ops("snapshots", env={"LIFEBOAT_PASSWORD_FILE": str(guess)})
    assert wrong.code == 12 and "none of the 2 key(s)" in wrong.stderr

    # 1-2. The recovery passphrase opens it; a new key replaces the lost one.
    as_recovery = {"LIFEBOAT_PASSWORD_FILE": str(recovery)}
    code, keys = ops.json("key", "list", env=as_recovery)
    assert code == 0 and isinstance(keys, list)
    assert [k["id"] for k in keys if not k["current"]] == [lost_key]
    new_pass = secrets / "main.pass.new"
    new_pass.write_bytes(NEW_PASSPHRASE + b"\n")
    added = ops("key", "add", env={**as_recovery, "LIFEBOAT_NEW_PASSWORD_FILE": str(new_pass)})
    assert added.code == 0, added
    removed = ops("key", "remove", lost_key[:8], env=as_recovery)
    assert removed.code == 0, removed
    os.rename(new_pass, world.password_file)  # where the configuration's password_file points
    chown_tree(world.password_file, OS_USER)

    # 3. Archiving works again, and everything restores.
    checked = ops("pg", "check", "--source", "db")
    assert checked.code == 0, checked
    wait_archived(world, world.repo_dir, NEW_PASSPHRASE, world.switch_wal())
    code, info = ops.json("pg", "info")
    assert code == 0 and status(info) == ("ok", None)
    result, copy = world.restore(world.new_dir("drill"), "--source", "db", env=ops.env)
    assert result.code == 0, result
    assert copy.psql("SELECT count(*) FROM orders") == "200"
    copy.stop()

    # The key files lost, or the header: the passphrase alone opens nothing; the saved copies do.
    (world.repo_dir / "config").unlink()
    without = ops("snapshots", env=as_recovery)
    assert without.code == 13 and "'config' of the repository" in without.stderr, without
    shutil.copy2(saved / "config", world.repo_dir / "config")
    shutil.rmtree(world.repo_dir / "keys")
    without = ops("snapshots", env=as_recovery)
    assert without.code == 13 and "has no key files" in without.stderr, without
    shutil.copytree(saved / "keys", world.repo_dir / "keys")
    chown_tree(world.repo_dir, OS_USER)
    back = ops("snapshots", env=as_recovery)
    assert back.code == 0, back


# --- 5. Archiving is stuck and pg_wal is filling --------------------------------------------------------


def ready_files(cluster: ScratchCluster) -> list[str]:
    return sorted(p.name for p in (cluster.data_dir / "pg_wal" / "archive_status").glob("*.ready"))


def test_archiving_stuck_the_queue_limit_drops_wal_and_a_new_base_backup_closes_the_window(
    worlds: WorldFactory,
) -> None:
    world = worlds(wal_segment_mb=1)  # small segments: a queue of a few MiB is many files
    ops = operator(world)
    c = world.cluster
    c.psql("CREATE TABLE orders(id int PRIMARY KEY)")
    c.psql("INSERT INTO orders SELECT generate_series(1, 100)")
    assert ops("backup", "postgres", "--source", "db").code == 0
    archive_now(world)

    # The repository goes away (an unmounted disk, a revoked credential): nothing is archived.
    away = world.base / "repo-away"
    os.rename(world.repo_dir, away)
    for batch in range(6):
        c.psql(f"INSERT INTO orders SELECT generate_series({batch * 100 + 101}, {batch * 100 + 200})")
        world.switch_wal()
    wait_until(lambda: len(ready_files(c)) >= 6, what="six segments waiting in pg_wal")
    stuck = ops("pg", "check", "--source", "db")
    assert stuck.code == 1, stuck
    assert "archiving is NOT working" in stuck.stdout

    # 1-2. A queue limit: beyond it the queue is dropped, loudly, and pg_wal can be recycled.
    limited = ops("pg", "setup", "--source", "db", "--queue-max", "4MiB", "--apply")
    assert limited.code == 0, limited
    assert "--queue-max 4MiB" in c.psql("SHOW archive_command")
    wait_until(lambda: not ready_files(c), timeout=60, what="the queue dropped")
    log = c.log.read_text()
    assert "lifeboat: ALERT: archive queue of" in log and "DROPPED" in log

    # 3. The cause fixed, archiving works; pg info names the hole after the newest base backup.
    os.rename(away, world.repo_dir)
    checked = ops("pg", "check", "--source", "db")
    assert checked.code == 0, checked
    c.psql("INSERT INTO orders SELECT generate_series(1001, 1100)")
    archive_now(world)
    code, info = ops.json("pg", "info")
    assert code == 13 and status(info)[0] == "gap", info
    text = ops("pg", "info")
    assert text.code == 13 and "GAP after the newest base backup" in text.stdout

    # 4. A new base backup re-establishes the window.
    assert ops("backup", "postgres", "--source", "db").code == 0
    code, info = ops.json("pg", "info")
    assert code == 0 and status(info) == ("ok", None), info
    result, copy = world.restore(world.new_dir("drill"), "--source", "db", env=ops.env)
    assert result.code == 0, result
    assert copy.psql("SELECT count(*) FROM orders") == "800"
    copy.stop()


# --- 6. The repository is damaged ---------------------------------------------------------------------


def packs(repo_dir: Path) -> set[Path]:
    return set((repo_dir / "data").glob("*/*"))


def damaged_snapshots(ops: Operator, *args: str) -> dict[str, set[str]]:
    """``check`` as JSON: snapshot id prefix -> the paths check says it cannot restore."""
    code, document = ops.json("check", *args)
    assert isinstance(document, dict)
    named: dict[str, set[str]] = {}
    for problem in document["errors"]:
        if problem["kind"] == "snapshot":
            snapshot = problem["object"].removeprefix("snapshot ")
            named.setdefault(snapshot, set()).add(problem["message"].split(" needs blob ")[0].split(": ")[-1])
    assert (code == 0) == (not document["errors"]), document
    return named


def test_damaged_repository_check_repair_index_and_what_a_lost_pack_costs(worlds: WorldFactory) -> None:
    world = worlds()
    ops = operator(world)
    c = world.cluster
    c.psql("CREATE TABLE orders(id int PRIMARY KEY)")
    c.psql("INSERT INTO orders SELECT generate_series(1, 100)")
    assert ops("backup", "postgres", "--source", "db").code == 0
    archive_now(world)
    app = world.base / "app"  # the files beside the database
    app.mkdir()
    (app / "settings.yaml").write_bytes(os.urandom(40_000))
    (app / "upload.bin").write_bytes(os.urandom(300_000))
    before = packs(world.repo_dir)
    code, first = ops.json("backup", str(app))
    assert code == 0 and isinstance(first, dict)
    code, second = ops.json("backup", str(app))  # unchanged: the same trees and blobs
    assert code == 0 and isinstance(second, dict)
    ids = {first["snapshot"]["id"][:8], second["snapshot"]["id"][:8]}
    data_pack = max(packs(world.repo_dir) - before, key=lambda p: p.stat().st_size)

    # Bit rot in one pack. 1. The structure is fine, reading the data is not.
    with open(data_pack, "r+b") as f:
        f.seek(data_pack.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))
    assert ops("check").code == 0
    read = ops("check", "--read-data")
    assert read.code == 13, read
    assert f"pack {data_pack.name[:8]}" in read.stdout and "is damaged" in read.stdout
    named = damaged_snapshots(ops, "--read-data")
    assert set(named) == ids  # every snapshot that needs the pack, the unchanged second one too
    damaged_file = named[first["snapshot"]["id"][:8]]
    assert damaged_file <= {f"{app}/settings.yaml", f"{app}/upload.bin"} and damaged_file

    # 2. Take the damaged pack out, rebuild the index from the packs that are left.
    quarantine = world.base / "quarantine"
    quarantine.mkdir()
    shutil.move(data_pack, quarantine / data_pack.name)
    missing = ops("check")
    assert missing.code == 13 and "is missing (the index lists it)" in missing.stdout
    repaired = ops("repair", "index")
    assert repaired.code == 0, repaired
    assert set(damaged_snapshots(ops)) == ids  # now named as "not in the index"
    refused = ops("prune")
    assert refused.code == 13, refused  # prune never runs over missing data

    # 3. A new backup stores again what still exists unchanged; older snapshots heal with it.
    (app / "upload.bin").write_bytes(os.urandom(300_000))  # this one changed since: its old content is gone
    assert ops("backup", str(app)).code == 0
    assert ops("backup", "postgres", "--source", "db").code == 0
    named = damaged_snapshots(ops)
    assert set(named) == ids and all(paths == {f"{app}/upload.bin"} for paths in named.values()), named

    # 4-5. Forget what cannot be healed, prune, check: whole again.
    forgot = ops("forget", *sorted(named))
    assert forgot.code == 0, forgot
    assert ops("prune").code == 0
    assert damaged_snapshots(ops, "--read-data") == {}
    code, info = ops.json("pg", "info")
    assert code == 0 and status(info) == ("ok", None)
