"""PostgreSQL benchmark: Lifeboat beside pgBackRest and Barman on one cluster, in one run.

Data (``--dataset``):

* ``pgbench``: ``pgbench -i -s SCALE`` (``--md5`` rewrites the blank filler with md5 text
  first, for realistic compression); the workloads are pgbench's: uniform, then a hot 1 %
  of the accounts (skewed);
* ``mixed``: a database that is not pgbench's, built with SQL to ``--size-gb`` (default
  1.5, about pgbench -s 100): an append-only table of events whose payloads mix entropy
  (compressible JSON-ish text, hex text, random bytes, a few large TOASTed documents),
  appended in bulk, and a hot set of rows updated again and again (accounts, the newest
  events), VACUUMed before the first backup; the workloads append (``append``) or mostly
  update the hot set (``hot``).

The data is built with archive_mode off, then archiving is turned on (a restart): the
building's WAL is not archived. Scenarios, each from a cold page cache:

* full backup (Lifeboat local; pgBackRest full, zst, process-max 2; Barman full via
  pg_basebackup);
* a workload (``pgbench -T DURATION``), then a second backup (Lifeboat; pgBackRest
  incremental; Barman full again — it has no incremental with pg_basebackup);
* the second workload, then a third backup; autovacuum is off and each workload ends with
  VACUUM and CHECKPOINT, so the tools, one after another, back up the same pages (not hint
  bits set in between);
* restore of the last backup into an empty directory (files only, not started),
  ``--restores`` times per tool (default 3, the tools taking turns; min/median/max), each
  from a cold cache and followed by ``sync``; beside ``cp -a`` + ``sync`` of the data
  directory (less pg_wal), the physical limit: each tool's median as a ratio of the copy's
  and of the best peer's (pgBackRest, Barman); target: Lifeboat at most 0.8× the best peer;
* WAL rate: the sustained archive rate while pgbench writes as fast as it can, Lifeboat's
  archive_command beside pgBackRest's async archive-push (process-max 2): the archive lag in
  segments must not grow;
* WAL backlog drain: with archive_command unset (archiving stopped, archive_mode on) the
  workload queues ``--drain-segments`` (default 64) segments in pg_wal; then archive_command
  is set to the tool's and the configuration reloaded (after a CHECKPOINT, so that none falls
  inside a drain), and the time until the last queued segment is archived (no ``.ready``
  left) is measured; ``--drain-runs`` times per tool
  (default 3, taking turns); Lifeboat's archive_command beside pgBackRest's async
  archive-push (process-max 2), the WAL rate scenario's commands. Target: Lifeboat at least
  1.3× faster.

Lifeboat runs with two repositories: the default (Argon2id with 19 MiB, a fixed cost when
the repository is opened) and one initialised with ``--kdf-memory 8MiB`` ("lifeboat-kdf",
archived into by the same archive_command), for the peak RSS of ``backup postgres`` and
``restore postgres`` beside the 64 MiB target.

For each: wall time, CPU time (user+sys), peak RSS, repository bytes. Results go to
bench/results/pg-s<scale>-<date>.md (pgbench) or pg-mixed-<size>g-<date>.md (mixed), and
.json. Run as root on a quiet machine:

    python bench/pg_bench.py [--dataset pgbench] [--scale 100] [--duration 60] [--md5]
    python bench/pg_bench.py --dataset mixed [--size-gb 1.5] [--duration 60]
        [--restores 3] [--drain-segments 64] [--drain-runs 3] [--kdf-memory 8MiB]
        [--scenarios backups,restore,wal-rate,wal-drain] [--keep]

A check of the benchmark itself: ``--scale 1 --duration 5 --drain-segments 8`` (or
``--dataset mixed --size-gb 0.05``). Needs PostgreSQL 15 (with pgcrypto, for ``mixed``) and
the Debian packages pgbackrest and barman.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from common import (  # noqa: E402 - bench/ is not a package
    Measurement,
    copy_command,
    dir_bytes,
    drop_caches,
    machine,
    memory_table,
    peak_rss,
    require,
    restore_summary,
    restore_table,
    run_measured,
    run_restore,
    spread,
    version_of,
    write_results,
)

from lifeboat.sources.tools.pg import find_program  # noqa: E402
from lifeboat.sources.tools.pgcluster import (  # noqa: E402
    ScratchCluster,
    chown_tree,
    free_port,
    server_lifeboat_command,
)

PASSWORD = "benchmark-passphrase"
OS_USER = "postgres"
PEERS = ("pgbackrest", "barman")
SCENARIOS = ("backups", "restore", "wal-rate", "wal-drain")
DRAIN_TARGET = 1.3  # the target: Lifeboat drains a backlog at least 1.3× faster than pgBackRest async
SKEWED = "\\set aid random_exponential(1, 100000 * :scale, 100)\n" + (
    "\\set bid random(1, 1 * :scale)\n\\set tid random(1, 10 * :scale)\n\\set delta random(-5000, 5000)\n"
    "BEGIN;\nUPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n"
    "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
    "UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;\n"
    "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;\n"
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);\n"
    "END;\n"
)


# The mixed database: events appended (payloads of mixed entropy) and a hot set of updated rows.
MIXED_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE accounts (
    id int PRIMARY KEY, balance bigint NOT NULL DEFAULT 0, updates int NOT NULL DEFAULT 0,
    touched timestamptz, note text);
INSERT INTO accounts (id, note) SELECT g, 'account ' || md5(g::text) FROM generate_series(1, 20000) g;
CREATE TABLE events (
    id bigserial PRIMARY KEY, at timestamptz NOT NULL, account int NOT NULL, kind text NOT NULL,
    status smallint NOT NULL DEFAULT 0, doc text, blob bytea);
CREATE INDEX events_account_at ON events (account, at);
-- JSON-ish text: repetitive keys and user agent, some random values (compresses ~3-4x).
CREATE FUNCTION bench_doc(tags int) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN format(
        '{"user": %s, "action": "%s", "path": "/api/v1/items/%s", "status": %s, "ms": %s, '
        '"agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0", '
        '"session": "%s", "tags": [%s]}',
        (random() * 100000)::int,
        (ARRAY['view', 'click', 'search', 'purchase', 'login', 'logout'])[1 + floor(random() * 6)::int],
        (random() * 5000)::int,
        (ARRAY[200, 200, 200, 201, 304, 404, 500])[1 + floor(random() * 7)::int],
        (random() * 900)::int,
        md5(random()::text),
        (SELECT string_agg(format('"tag-%s"', (random() * 60)::int), ', ') FROM generate_series(1, tags)));
END $$;
-- Random bytes (incompressible), n of them.
CREATE FUNCTION bench_blob(n int) RETURNS bytea LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (SELECT string_agg(gen_random_bytes(least(1024, n - g)), ''::bytea ORDER BY g)
            FROM generate_series(0, n - 1, 1024) g);
END $$;
-- n events: 55 % JSON-ish text, 15 % hex text, 1 % large documents (TOASTed), 29 % random bytes.
CREATE FUNCTION bench_insert(n int) RETURNS void LANGUAGE sql VOLATILE AS $$
INSERT INTO events (at, account, kind, doc, blob)
SELECT clock_timestamp(), 1 + floor(random() * 20000)::int,
       (ARRAY['view', 'click', 'search', 'purchase', 'login', 'error'])[1 + floor(random() * 6)::int],
       CASE WHEN r < 0.55 THEN bench_doc(1 + floor(random() * 40)::int)
            WHEN r < 0.70 THEN encode(gen_random_bytes(64 + floor(random() * 400)::int), 'hex')
            WHEN r < 0.71 THEN repeat(bench_doc(30), 20 + floor(random() * 40)::int)
       END,
       CASE WHEN r >= 0.71 THEN bench_blob(128 + floor(random() * 2400)::int) END
FROM (SELECT random() AS r FROM generate_series(1, n)) AS s
$$;
"""
# After each bulk append while building: the hot set is updated (dead tuples VACUUM reclaims).
MIXED_HOT_UPDATES = """
UPDATE accounts SET balance = balance + 1, updates = updates + 1, touched = now() WHERE id % 5 = {batch} % 5;
UPDATE events SET status = status + 1 WHERE id > (SELECT max(id) FROM events) - 20000 AND random() < 0.3;
"""
MIXED_APPEND = (
    "\\set acct random(1, 20000)\n\\set back random(0, 20000)\n"
    "BEGIN;\nSELECT bench_insert(3);\n"
    "UPDATE accounts SET balance = balance + 1, updates = updates + 1, touched = now() WHERE id = :acct;\n"
    "UPDATE events SET status = status + 1 WHERE id = (SELECT max(id) FROM events) - :back;\n"
    "END;\n"
)
MIXED_HOT = (
    "\\set acct random_exponential(1, 20000, 100)\n\\set back random_exponential(0, 20000, 20)\n"
    "BEGIN;\n"
    "UPDATE accounts SET balance = balance + 1, updates = updates + 1, touched = now() WHERE id = :acct;\n"
    "UPDATE events SET status = status + 1 WHERE id = (SELECT max(id) FROM events) - :back;\n"
    "UPDATE events SET status = status + 1 WHERE id = (SELECT max(id) FROM events) - :back / 2;\n"
    "SELECT bench_insert(1);\n"
    "END;\n"
)
WORKLOADS = {"pgbench": ("uniform", "skewed"), "mixed": ("append", "hot")}

WAL_DIRECTORIES = ("wal", "archive", "wals", "streaming")  # Lifeboat, pgBackRest, Barman (filed, streamed)


def backup_bytes(repo: Path) -> int:
    """A repository's bytes without its archived WAL (compared separately): Lifeboat's and
    pgBackRest's WAL directories sit at the top, Barman's one level down (per server)."""
    wal_dirs = [repo / name for name in WAL_DIRECTORIES]
    wal_dirs += [sub / name for sub in repo.iterdir() if sub.is_dir() for name in WAL_DIRECTORIES]
    return dir_bytes(repo) - sum(dir_bytes(d) for d in wal_dirs if d.is_dir())


def segment_number(walfile: str) -> int:
    """Consecutive number of a 16 MiB WAL segment from its name (log * 256 + segment)."""
    return int(walfile[8:16], 16) * 0x100 + int(walfile[16:24], 16)


def as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *argv]


def ready_files(data_dir: Path) -> set[str]:
    """The WAL files PostgreSQL has queued for archiving (``.ready`` in archive_status)."""
    status = data_dir / "pg_wal" / "archive_status"
    return {name[: -len(".ready")] for name in os.listdir(status) if name.endswith(".ready")}


def lock_held(path: Path) -> bool:
    """True while a process holds a flock on ``path`` (Lifeboat's background pusher holds its
    spool's <repository>/out/worker.lock); probed read-only, so the file is never created here."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def processes_running(marker: str) -> list[int]:
    """Ids of the processes whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
    return found


class Bench:
    def __init__(
        self,
        work: Path,
        *,
        dataset: str,
        scale: int,
        size_gb: float,
        duration: int,
        md5: bool,
        restores: int,
        kdf_memory: str,
        drain_segments: int,
    ) -> None:
        self.work = work
        self.dataset = dataset
        self.scale = scale
        self.size_gb = size_gb
        self.duration = duration
        self.md5 = md5
        self.restore_runs = restores
        self.kdf_memory = kdf_memory
        self.drain_segments = drain_segments
        self.results: list[Measurement] = []
        self.notes: dict[str, object] = {}
        self.cluster = ScratchCluster(work / "pg", port=free_port())
        self.lifeboat_repo = work / "repo-lifeboat"
        self.kdf_repo = work / "repo-lifeboat-kdf"
        self.kdf_spool = work / "spool-lifeboat-kdf"  # its own: a spool's statuses belong to one repository
        self.password_file = work / "passphrase"
        self.pgbr_conf = work / "pgbackrest.conf"
        self.pgbr_repo = work / "repo-pgbackrest"
        self.barman_home = work / "repo-barman"
        self.barman_conf = work / "barman.conf"
        self.receive_wal: subprocess.Popen[bytes] | None = None
        self.server_command = server_lifeboat_command(OS_USER, mirror=work / "runtime") or (
            f"{sys.executable} -m lifeboat"
        )

    @property
    def name(self) -> str:
        return f"pg-s{self.scale}" if self.dataset == "pgbench" else f"pg-mixed-{self.size_gb:g}g"

    @property
    def lifeboats(self) -> tuple[str, ...]:
        return ("lifeboat", "lifeboat-kdf") if self.kdf_memory else ("lifeboat",)

    # --- environment ------------------------------------------------------------------------------
    def lifeboat_env(self, tool: str = "lifeboat") -> dict[str, str]:
        return {
            "LIFEBOAT_REPO": str(self.kdf_repo if tool == "lifeboat-kdf" else self.lifeboat_repo),
            "LIFEBOAT_PASSWORD_FILE": str(self.password_file),
            "LIFEBOAT_SERVER_COMMAND": self.server_command,
            "LIFEBOAT_CONFIG": "",
            "PYTHONPATH": str(HERE.parent / "src"),
        }

    def lifeboat(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "lifeboat", *argv]

    def conn(self) -> list[str]:
        c = self.cluster
        return ["--host", str(c.socket_dir), "--port", str(c.port), "--user", "postgres"]

    def pgbackrest(self, *argv: str) -> list[str]:
        return as_postgres("pgbackrest", f"--config={self.pgbr_conf}", "--stanza=bench", *argv)

    def barman(self, *argv: str) -> list[str]:
        return as_postgres("barman", "-c", str(self.barman_conf), "-q", *argv)

    def archive_command(
        self,
        *,
        pgbackrest_async: bool = False,
        lifeboat: bool = True,
        lifeboat_kdf: bool = False,
        pgbackrest: bool = True,
    ) -> str:
        parts = []
        if lifeboat:
            env = f"LIFEBOAT_REPO={self.lifeboat_repo} LIFEBOAT_PASSWORD_FILE={self.password_file}"
            parts.append(f"{env} {self.server_command} wal-push %p")
        if lifeboat_kdf and self.kdf_memory:
            env = f"LIFEBOAT_REPO={self.kdf_repo} LIFEBOAT_PASSWORD_FILE={self.password_file}"
            parts.append(f"{env} {self.server_command} wal-push --spool {self.kdf_spool} %p")
        if pgbackrest:
            mode = "--archive-async --process-max=2" if pgbackrest_async else ""
            parts.append(f"pgbackrest --config={self.pgbr_conf} --stanza=bench {mode} archive-push %p")
        return " && ".join(parts) or "true"

    def set_archive_command(self, command: str) -> None:
        self.cluster.psql(f"ALTER SYSTEM SET archive_command = '{command.replace(chr(39), chr(39) * 2)}'")
        self.cluster.psql("SELECT pg_reload_conf()")

    # --- set-up --------------------------------------------------------------------------------------
    def setup(self) -> None:
        what = f"pgbench -s {self.scale}" if self.dataset == "pgbench" else f"mixed {self.size_gb:g} GB"
        print(f"setting up a {what} cluster in {self.work}", flush=True)
        os.chmod(self.work, 0o755)
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        chown_tree(self.password_file, OS_USER)
        for tool in self.lifeboats:
            env = {**os.environ, **self.lifeboat_env(tool), "LIFEBOAT_PASSWORD": ""}
            kdf = ["--kdf-memory", self.kdf_memory] if tool == "lifeboat-kdf" else []
            subprocess.run(self.lifeboat("init", *kdf), env=env, check=True, capture_output=True)
            chown_tree(self.kdf_repo if tool == "lifeboat-kdf" else self.lifeboat_repo, OS_USER)
        directories = (self.pgbr_repo, self.barman_home, *((self.kdf_spool,) if self.kdf_memory else ()))
        for directory in directories:
            directory.mkdir()
            chown_tree(directory, OS_USER)
        c = self.cluster
        self.pgbr_conf.write_text(
            f"[global]\nrepo1-path={self.pgbr_repo}\nrepo1-retention-full=10\nprocess-max=2\ncompress-type=zst\n"
            f"start-fast=y\nlog-level-console=warn\nlog-path={self.pgbr_repo}/log\nlock-path={self.pgbr_repo}/lock\n"
            f"spool-path={self.pgbr_repo}/spool\n\n[bench]\npg1-path={c.data_dir}\npg1-port={c.port}\n"
            f"pg1-socket-path={c.socket_dir}\n"
        )
        self.barman_conf.write_text(
            f"[barman]\nbarman_home = {self.barman_home}\nbarman_user = {OS_USER}\n"
            f"log_file = {self.barman_home}/barman.log\nconfiguration_files_directory = {self.barman_home}/conf.d\n\n"
            f"[bench]\nconninfo = host={c.socket_dir} port={c.port} user=postgres dbname=postgres\n"
            f"streaming_conninfo = host={c.socket_dir} port={c.port} user=postgres\n"
            "backup_method = postgres\nstreaming_archiver = on\nslot_name = barman\narchiver = off\n"
        )
        (self.barman_home / "conf.d").mkdir()
        chown_tree(self.barman_home, OS_USER)
        for path in (self.pgbr_conf, self.barman_conf):
            chown_tree(path, OS_USER)
        c.init(
            checksums=True,
            settings={
                "archive_mode": "off",  # the data is built without archiving its WAL; on below
                "archive_command": self.archive_command(lifeboat_kdf=True),
                "max_wal_size": "4GB",
                "shared_buffers": "256MB",
                "synchronous_commit": "off",
                "max_replication_slots": "10",
                "autovacuum": "off",  # the bench vacuums after each workload: every tool sees the same pages
            },
        )
        c.start()
        if self.dataset == "pgbench":
            done = c.client("pgbench", "-i", "-q", "-s", str(self.scale), "postgres", timeout=3600)
            if done.returncode != 0:
                raise SystemExit(f"pgbench -i failed: {done.stderr.decode()}")
            if self.md5:
                c.psql("UPDATE pgbench_accounts SET filler = md5(aid::text) || md5((aid * 7)::text) || md5(aid::text)")
                c.psql("VACUUM FULL pgbench_accounts")
        else:
            self.build_mixed()
        c.psql("CHECKPOINT")
        c.psql("ALTER SYSTEM SET archive_mode = 'on'")
        c.stop()
        c.start()
        subprocess.run(self.pgbackrest("stanza-create"), check=True, capture_output=True)
        subprocess.run(self.barman("receive-wal", "--create-slot", "bench"), check=False, capture_output=True)
        self.receive_wal = subprocess.Popen(
            self.barman("receive-wal", "bench"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.barman_archive()  # Barman refuses a first backup before it has archived WAL
        self.notes["data_bytes"] = dir_bytes(c.data_dir) - dir_bytes(c.data_dir / "pg_wal")
        time.sleep(2.5)  # files written this close to the first backup are re-read by Lifeboat's second

    def build_mixed(self) -> None:
        """The mixed database, appended in bulk to ``size_gb`` with the hot set updated after
        each append, then VACUUMed."""
        c = self.cluster
        c.psql(MIXED_SCHEMA)
        target = int(self.size_gb * 1e9)
        batch = 0
        started = time.monotonic()
        while int(c.psql("SELECT pg_database_size('postgres')")) < target:
            c.psql("SELECT bench_insert(20000)")
            c.psql(MIXED_HOT_UPDATES.format(batch=batch))
            batch += 1
            if batch % 10 == 0:
                size = int(c.psql("SELECT pg_database_size('postgres')"))
                print(f"  {size / 1e9:.2f} GB after {time.monotonic() - started:.0f}s", flush=True)
        c.psql("VACUUM (ANALYZE)")
        rows = c.psql(
            "SELECT count(*), pg_total_relation_size('events'), pg_relation_size('events'), "
            "pg_indexes_size('events'), pg_database_size('postgres') FROM events"
        ).split("|")
        self.notes["mixed"] = {
            "events": int(rows[0]),
            "events_total_bytes": int(rows[1]),
            "events_heap_bytes": int(rows[2]),
            "events_index_bytes": int(rows[3]),
            "database_bytes": int(rows[4]),
            "build_seconds": round(time.monotonic() - started),
        }

    def barman_archive(self) -> None:
        """Have Barman file the WAL it streamed (what its cron job does)."""
        streaming = self.barman_home / "bench" / "streaming"
        deadline = time.monotonic() + 60
        while not any(p.suffix == ".partial" for p in streaming.glob("*")) and time.monotonic() < deadline:
            time.sleep(0.2)  # pg_receivewal is streaming
        subprocess.run(self.barman("switch-wal", "--force", "bench"), check=True, capture_output=True, timeout=300)
        while not any(p.suffix != ".partial" for p in streaming.glob("*")) and time.monotonic() < deadline:
            time.sleep(0.2)  # the switched segment arrived
        wals = self.barman_home / "bench" / "wals"
        while True:
            subprocess.run(self.barman("archive-wal", "bench"), check=True, capture_output=True, timeout=600)
            if any(wals.rglob("0*")) or time.monotonic() > deadline:
                return
            time.sleep(0.5)

    # --- measuring -------------------------------------------------------------------------------------
    def measure(self, tool: str, scenario: str, argv: list[str], repo: Path, env: dict[str, str] | None = None) -> None:
        # The WAL of the workload is still being archived into every repository: wait until
        # it is, and count the backup's own bytes (WAL directories excluded) for a fair share.
        self.wait_archived()
        drop_caches()
        before = backup_bytes(repo)
        result = run_measured(tool, scenario, argv, env=env)
        result.repo_bytes = backup_bytes(repo) - before
        result.extra["repo_total_bytes"] = dir_bytes(repo)
        self.results.append(result)
        print(
            f"  {tool:12} {scenario:16} {result.wall_s:7.2f}s wall {result.cpu_s:7.2f}s cpu "
            f"{result.peak_rss_mib:6.0f} MiB rss  +{result.repo_bytes / 1e6:9.1f} MB",
            flush=True,
        )

    def backups(self, scenario: str) -> None:
        print(f"{scenario}:", flush=True)
        kind = "full" if scenario == "full backup" else "incr"
        for tool in self.lifeboats:
            repo = self.kdf_repo if tool == "lifeboat-kdf" else self.lifeboat_repo
            argv = self.lifeboat("backup", "postgres", *self.conn())
            self.measure(tool, scenario, argv, repo, self.lifeboat_env(tool))
        self.measure("pgbackrest", scenario, self.pgbackrest("backup", f"--type={kind}"), self.pgbr_repo)
        self.measure("barman", scenario, self.barman("backup", "bench"), self.barman_home)
        self.barman_archive()

    def workload_args(self, name: str) -> list[str]:
        """pgbench's arguments (less -T) for a workload: pgbench's own, or a script."""
        script = {"skewed": SKEWED, "append": MIXED_APPEND, "hot": MIXED_HOT}.get(name)
        if script is None:
            return ["-c", "4", "-j", "2", "-n", *(["-N"] if name == "simple-update" else [])]
        path = self.work / f"{name}.sql"
        path.write_text(script)
        return ["-c", "4", "-j", "2", "-n", "-f", str(path)]

    @property
    def writing_workload(self) -> str:
        """The workload that writes WAL as fast as it can (WAL rate and backlog)."""
        return "simple-update" if self.dataset == "pgbench" else "append"

    def workload(self, name: str) -> None:
        print(f"workload {name}: pgbench -T {self.duration}", flush=True)
        args = ["-T", str(self.duration), *self.workload_args(name)]
        done = self.cluster.client("pgbench", *args, "postgres", timeout=self.duration * 4 + 600)
        if done.returncode != 0:
            raise SystemExit(f"pgbench ({name}) failed: {done.stderr.decode(errors='replace')[-2000:]}")
        tps = next((line for line in done.stdout.decode().splitlines() if line.startswith("tps")), "")
        self.notes[f"workload_{name}"] = tps
        self.cluster.psql("VACUUM")  # hint bits and visibility map set now, not during one tool's backup
        self.cluster.psql("CHECKPOINT")
        time.sleep(2.5)

    def restores(self) -> None:
        """The last backup restored ``restore_runs`` times per tool from a cold cache, the tools
        taking turns, beside cp -a + sync of the data directory without pg_wal."""
        print("restore:", flush=True)
        self.wait_archived()
        tools = ["cp", *self.lifeboats, "pgbackrest", "barman"]
        live = dir_bytes(self.cluster.data_dir) - dir_bytes(self.cluster.data_dir / "pg_wal")
        for run in range(1, self.restore_runs + 1):
            for tool in tools:
                target = self.work / f"restore-{tool}"
                shutil.rmtree(target, ignore_errors=True)
                if tool == "cp":
                    result = run_restore(
                        "cp", "restore", copy_command(self.cluster.data_dir, target, exclude=("pg_wal",)), run=run
                    )
                else:
                    target.mkdir()
                    chown_tree(target, OS_USER)
                    result = run_restore(
                        tool, "restore", self.restore_command(tool, target), run=run, env=self.restore_env(tool)
                    )
                restored = dir_bytes(target) - (dir_bytes(target / "pg_wal") if (target / "pg_wal").is_dir() else 0)
                result.extra["restored_bytes"] = restored
                self.results.append(result)
                print(
                    f"  {tool:12} restore {run}  {result.wall_s:7.2f}s wall +{result.extra['sync_s']:.2f}s sync "
                    f"{result.cpu_s:7.2f}s cpu {result.peak_rss_mib:6.0f} MiB rss  {restored / 1e6:9.1f} MB restored",
                    flush=True,
                )
                shutil.rmtree(target, ignore_errors=True)
                if restored < live * 0.9:
                    raise SystemExit(f"{tool} restored {restored} bytes; the data directory holds {live}")
        self.notes["restore"] = restore_summary(self.results, scenario="restore", peers=PEERS, reference="cp")

    def restore_command(self, tool: str, target: Path) -> list[str]:
        if tool.startswith("lifeboat"):
            return self.lifeboat("restore", "postgres", "--target-dir", str(target), "--immediate")
        if tool == "pgbackrest":
            return self.pgbackrest("restore", f"--pg1-path={target}", "--type=immediate")
        return self.barman("recover", "bench", "latest", str(target))

    def restore_env(self, tool: str) -> dict[str, str] | None:
        return self.lifeboat_env(tool) if tool.startswith("lifeboat") else None

    def wait_archived(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while self.archive_lag()[0] > 0 and time.monotonic() < deadline:
            time.sleep(0.5)

    def archive_lag(self) -> tuple[int, int]:
        row = self.cluster.psql(
            "SELECT pg_walfile_name(pg_current_wal_lsn()), coalesce(last_archived_wal, '') FROM pg_stat_archiver"
        )
        current, archived = row.split("|")
        if not archived or archived.endswith((".history", ".backup", ".partial")):
            archived = archived[:24]
        if not archived:
            return 0, 0
        return segment_number(current) - segment_number(archived) - 1, segment_number(current)

    def wait_pushers_gone(self, timeout: float = 120) -> None:
        """Until no background archiver of a previous scenario is left: Lifeboat's pusher pushes
        every ``.ready`` file it sees while WAL keeps coming, pgBackRest's async process the
        queue it read; either would work for (or against) the next scenario's tool."""
        spools = (self.cluster.data_dir / "lifeboat_spool", self.kdf_spool)  # a directory per repository in each
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            locks = [lock for spool in spools for lock in spool.glob("*/out/worker.lock")]
            pgbackrest = processes_running("archive-push:async") + processes_running("archive-push:local")
            if not any(lock_held(lock) for lock in locks) and not pgbackrest:
                return
            time.sleep(0.5)
        print("  (a background archiver is still running)", flush=True)

    def wal_rate(self, tool: str) -> None:
        ours = tool == "lifeboat"
        command = self.archive_command(lifeboat=ours, pgbackrest=not ours, pgbackrest_async=True)
        self.wait_archived()
        self.set_archive_command(command)
        self.wait_pushers_gone()
        args = ["-T", str(self.duration), *self.workload_args(self.writing_workload)]
        commits = "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'"
        commits_before = int(self.cluster.psql(commits))
        load = self.cluster.background("pgbench", *args, "postgres")
        lags: list[int] = []
        first_segment = self.archive_lag()[1]
        started = time.monotonic()
        while load.poll() is None:
            time.sleep(1.0)
            lags.append(self.archive_lag()[0])
        written = self.archive_lag()[1] - first_segment
        wall = time.monotonic() - started
        tps = (int(self.cluster.psql(commits)) - commits_before) / wall
        drain_started = time.monotonic()
        self.cluster.psql("SELECT pg_switch_wal()")
        while self.archive_lag()[0] > 0 and time.monotonic() - drain_started < 600:
            time.sleep(0.5)
        drain = time.monotonic() - drain_started
        half = len(lags) // 2
        growing = bool(lags) and max(lags[half:] or [0]) > max(lags[:half] or [0]) + 2
        result = Measurement(tool, "wal archiving", wall, 0.0, 0.0)
        result.extra.update(
            segments_written=written,
            segments_per_second=round(written / wall, 2) if wall else 0,
            pgbench_tps=round(tps),
            max_lag_segments=max(lags or [0]),
            final_lag_segments=lags[-1] if lags else 0,
            lag_growing=growing,
            drain_seconds=round(drain, 1),
        )
        self.results.append(result)
        print(
            f"  {tool:10} wal archiving    {written} segments in {wall:.0f}s ({written / wall:.1f}/s) "
            f"at {tps:.0f} tps, "
            f"max lag {max(lags or [0])}, drained in {drain:.1f}s, lag growing: {growing}",
            flush=True,
        )

    def wal_drain(self, tool: str, run: int) -> None:
        """A backlog of ``drain_segments`` queued with archiving stopped, then the tool's
        archive_command set and the configuration reloaded: the time until none is left."""
        c = self.cluster
        self.wait_archived()
        self.set_archive_command("")  # archive_mode on, archive_command unset: PostgreSQL queues, archives nothing
        self.wait_pushers_gone()
        load = c.background("pgbench", "-T", "3600", *self.workload_args(self.writing_workload), "postgres")
        try:
            while len(ready_files(c.data_dir)) < self.drain_segments and load.poll() is None:
                time.sleep(0.2)
        finally:
            if load.poll() is None:
                load.terminate()
            load.wait(timeout=60)
        c.psql("SELECT pg_switch_wal()")  # the segment being written is queued too
        queued: set[str] = set()
        while (now := ready_files(c.data_dir)) != queued:  # until PostgreSQL has queued everything
            queued = now
            time.sleep(0.5)
        if len(queued) < self.drain_segments:
            raise SystemExit(f"only {len(queued)} WAL files queued for the drain: pgbench ended early")
        last = max(name for name in queued if len(name) == 24)
        # A checkpoint now, not during the drain: the backlog's 1 GiB of WAL brings one due (by
        # max_wal_size or checkpoint_timeout) within a run or two, and it fell on whichever tool
        # drained second (writing shared buffers, recycling segments: seen as 1.5-2x that drain's
        # time, for either tool).
        c.psql("CHECKPOINT")
        archived_before = int(c.psql("SELECT archived_count FROM pg_stat_archiver"))
        wal = c.data_dir / "pg_wal"
        queued_bytes = sum((wal / name).stat().st_size for name in queued)
        ours = tool == "lifeboat"
        command = self.archive_command(lifeboat=ours, pgbackrest=not ours, pgbackrest_async=True)
        started = time.monotonic()
        self.set_archive_command(command)
        while queued & ready_files(c.data_dir):
            if time.monotonic() - started > 1800:
                raise SystemExit(f"{tool} did not drain {len(queued)} WAL files in 30 min")
            time.sleep(0.05)
        drain = time.monotonic() - started
        archived, last_archived, failed = c.psql(
            "SELECT archived_count, last_archived_wal, failed_count FROM pg_stat_archiver"
        ).split("|")
        result = Measurement(tool, "wal drain", drain, 0.0, 0.0)
        result.extra.update(
            run=run,
            queued_files=len(queued),
            queued_bytes=queued_bytes,
            last_queued=last,
            last_archived=last_archived,
            archived=int(archived) - archived_before,
            failed_count=int(failed),
            files_per_second=round(len(queued) / drain, 2),
        )
        self.results.append(result)
        print(
            f"  {tool:10} wal drain {run}  {len(queued)} files in {drain:.2f}s ({len(queued) / drain:.1f}/s), "
            f"last archived {last_archived}",
            flush=True,
        )

    def close(self, keep: bool) -> None:
        if self.receive_wal is not None:
            self.receive_wal.send_signal(signal.SIGTERM)
            self.receive_wal.wait(timeout=30)
        try:
            self.cluster.stop("fast", check=False)
        except Exception as exc:  # best effort
            print(f"could not stop the cluster: {exc}")
        if not keep:
            shutil.rmtree(self.work, ignore_errors=True)


def drain_summary(results: list[Measurement]) -> dict[str, dict[str, float]]:
    """Per tool: min/median/max of the drain time and the median rate; Lifeboat's speed-up
    over pgBackRest is the ratio of the median rates (files per second)."""
    summary: dict[str, dict[str, float]] = {}
    for tool in ("lifeboat", "pgbackrest"):
        runs = [m for m in results if m.tool == tool and m.scenario == "wal drain"]
        if not runs:
            continue
        low, mid, high = spread([m.wall_s for m in runs])
        summary[tool] = {
            "runs": len(runs),
            "queued_files_median": spread([float(m.extra["queued_files"]) for m in runs])[1],  # type: ignore[arg-type]
            "min_s": round(low, 2),
            "median_s": round(mid, 2),
            "max_s": round(high, 2),
            "files_per_second_median": spread([float(m.extra["files_per_second"]) for m in runs])[1],  # type: ignore[arg-type]
        }
    if "lifeboat" in summary and "pgbackrest" in summary:
        summary["lifeboat"]["speedup_vs_pgbackrest"] = round(
            summary["lifeboat"]["files_per_second_median"] / summary["pgbackrest"]["files_per_second_median"], 2
        )
    return summary


def table(bench: Bench) -> str:
    kdf = bench.kdf_memory
    labels = {"lifeboat-kdf": f"lifeboat (KDF {kdf})", "cp": "cp -a + sync"}
    if bench.dataset == "pgbench":
        title = f"pgbench -s {bench.scale}{', md5 filler' if bench.md5 else ''}"
    else:
        title = f"mixed database, {bench.size_gb:g} GB"
    lines = [
        f"# PostgreSQL benchmark ({title}, {bench.duration} s workloads)",
        "",
        f"Data directory without WAL: {int(bench.notes.get('data_bytes', 0)) / 1e9:.2f} GB. "  # type: ignore[call-overload]
        + " ".join(f"{k}: {v}." for k, v in bench.notes.items() if k.startswith("workload")),
        "",
    ]
    if bench.dataset == "mixed" and isinstance(bench.notes.get("mixed"), dict):
        mixed = bench.notes["mixed"]
        assert isinstance(mixed, dict)
        lines += [
            f"Mixed database: {mixed['events']} events (55 % JSON-ish text, 15 % hex text, 1 % large TOASTed "
            f"documents, 29 % random bytes), table {mixed['events_heap_bytes'] / 1e9:.2f} GB + TOAST and indexes "
            f"{(mixed['events_total_bytes'] - mixed['events_heap_bytes']) / 1e9:.2f} GB; a hot set of 20,000 "
            f"accounts and the newest events updated; VACUUMed before the first backup; built in "
            f"{mixed['build_seconds']} s.",
            "",
        ]
    backups = [m for m in bench.results if m.scenario not in ("restore", "wal archiving", "wal drain")]
    if backups:
        lines += [
            "## Backups",
            "",
            "| tool | scenario | wall s | user+sys s | peak RSS MiB | repo +MB |",
            "|---|---|---|---|---|---|",
        ]
        for m in backups:
            lines.append(
                f"| {labels.get(m.tool, m.tool)} | {m.scenario} | {m.wall_s:.2f} | {m.cpu_s:.2f} "
                f"| {m.peak_rss_mib:.0f} | {m.repo_bytes / 1e6:.1f} |"
            )
        lines.append("")
    summary = bench.notes.get("restore")
    if isinstance(summary, dict):
        lines += [
            "## Restore of the last backup",
            "",
            f"Files only (not started), {bench.restore_runs} runs per tool from a cold page cache, the tools taking "
            "turns; the reference is `cp -a` of the data directory without pg_wal, then `sync`.",
            "",
        ]
        lines += restore_table(summary, peers=PEERS, reference="cp", labels=labels)
        lines.append("")
    if bench.kdf_memory and (backups or summary):
        lines += ["## Memory", ""]
        scenarios = tuple(sorted({m.scenario for m in backups}))
        lines += memory_table(
            [
                (
                    "`backup postgres`",
                    peak_rss(bench.results, "lifeboat", scenarios),
                    peak_rss(bench.results, "lifeboat-kdf", scenarios),
                ),
                (
                    "`restore postgres`",
                    peak_rss(bench.results, "lifeboat", ("restore",)),
                    peak_rss(bench.results, "lifeboat-kdf", ("restore",)),
                ),
            ],
            kdf,
        )
        lines.append("")
    rates = [m for m in bench.results if m.scenario == "wal archiving"]
    if rates:
        lines += [
            f"## WAL archiving under full-speed pgbench ({bench.writing_workload})",
            "",
            "| tool | WAL written | pgbench tps | segments/s | max lag | final lag | lag growing | drain s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for m in rates:
            e = m.extra
            lines.append(
                f"| {m.tool} | {e['segments_written']} segments in {m.wall_s:.0f}s | {e.get('pgbench_tps', '')} "
                f"| {e['segments_per_second']} | "
                f"{e['max_lag_segments']} | {e['final_lag_segments']} | {e['lag_growing']} | {e['drain_seconds']} |"
            )
        lines.append("")
    drains = bench.notes.get("wal_drain")
    if isinstance(drains, dict) and drains:
        lines += [
            "## WAL backlog drain",
            "",
            f"{bench.drain_segments}+ segments of the {bench.writing_workload} workload's WAL queued in pg_wal with "
            "archive_command unset (archive_mode on), a CHECKPOINT, then the tool's archive_command set and the "
            "configuration reloaded: the time until no queued file is left `.ready`. Lifeboat: `wal-push` "
            "(background pusher, archive_parallel 2); pgBackRest: async archive-push, process-max 2. The tools "
            f"take turns. Target: Lifeboat at least {DRAIN_TARGET}× faster than pgBackRest (median rates).",
            "",
            "| tool | runs | files queued (median) | min s | median s | max s | files/s (median) | vs pgBackRest "
            f"| target ≥ {DRAIN_TARGET}× |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for tool, row in drains.items():
            speedup = row.get("speedup_vs_pgbackrest")
            lines.append(
                f"| {tool} | {row['runs']:.0f} | {row['queued_files_median']:.0f} | {row['min_s']:.2f} "
                f"| {row['median_s']:.2f} | {row['max_s']:.2f} | {row['files_per_second_median']:.1f} "
                f"| {'' if speedup is None else f'{speedup:.2f}×'} "
                f"| {'' if speedup is None else ('met' if speedup >= DRAIN_TARGET else 'missed')} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="PostgreSQL backup benchmark: Lifeboat, pgBackRest, Barman")
    parser.add_argument("--dataset", choices=("pgbench", "mixed"), default="pgbench")
    parser.add_argument("--scale", type=int, default=100, help="pgbench: pgbench -i -s SCALE")
    parser.add_argument("--size-gb", type=float, default=1.5, help="mixed: the database's size")
    parser.add_argument("--duration", type=int, default=60, help="seconds of each pgbench workload")
    parser.add_argument("--md5", action="store_true", help="pgbench: realistic (less compressible) filler")
    parser.add_argument("--restores", type=int, default=3, help="cold-cache restores per tool (median reported)")
    parser.add_argument("--drain-segments", type=int, default=64, help="WAL segments queued for the drain")
    parser.add_argument("--drain-runs", type=int, default=3, help="backlog drains per tool")
    parser.add_argument("--kdf-memory", default="8MiB", help="Argon2id memory of lifeboat-kdf's repository ('' none)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="a subset of " + ",".join(SCENARIOS))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--workdir", default="/var/tmp")
    args = parser.parse_args()
    scenarios = set(args.scenarios.split(","))
    if not scenarios <= set(SCENARIOS):
        raise SystemExit(f"--scenarios: choose among {', '.join(SCENARIOS)}")
    if os.geteuid() != 0:
        raise SystemExit("run as root (cold caches; the cluster runs as postgres)")
    require("pgbackrest", "pgbackrest")
    require("barman", "barman")
    find_program("pg_basebackup")
    work = Path(tempfile.mkdtemp(prefix="lifeboat-pgbench-", dir=args.workdir))
    bench = Bench(
        work,
        dataset=args.dataset,
        scale=args.scale,
        size_gb=args.size_gb,
        duration=args.duration,
        md5=args.md5,
        restores=args.restores,
        kdf_memory=args.kdf_memory,
        drain_segments=args.drain_segments,
    )
    first, second = WORKLOADS[args.dataset]
    try:
        bench.setup()
        if scenarios & {"backups", "restore"}:
            bench.backups("full backup")
        if "backups" in scenarios:
            bench.workload(first)
            bench.backups("second backup")
            bench.workload(second)
            bench.backups(f"third ({second})")
        if "restore" in scenarios:
            bench.restores()
        if "wal-rate" in scenarios:
            print("WAL archiving under full-speed pgbench:", flush=True)
            bench.wal_rate("lifeboat")
            bench.wal_rate("pgbackrest")
        if "wal-drain" in scenarios:
            print(f"WAL backlog drain ({args.drain_segments} segments):", flush=True)
            for run in range(1, args.drain_runs + 1):
                for tool in ("lifeboat", "pgbackrest") if run % 2 else ("pgbackrest", "lifeboat"):
                    bench.wal_drain(tool, run)
            bench.notes["wal_drain"] = drain_summary(bench.results)
    finally:
        bench.close(args.keep)
    context = {
        **machine(),
        "dataset": args.dataset,
        "scale": args.scale if args.dataset == "pgbench" else None,
        "size_gb": args.size_gb if args.dataset == "mixed" else None,
        "duration_s": args.duration,
        "md5": args.md5,
        "restores": args.restores,
        "drain_segments": args.drain_segments,
        "drain_runs": args.drain_runs,
        "kdf_memory": args.kdf_memory,
        "scenarios": sorted(scenarios),
        "pgbackrest": version_of(["pgbackrest", "version"]),
        "barman": version_of(["barman", "--version"]),
        "postgres": version_of([find_program("postgres"), "--version"]),
        **bench.notes,
    }
    path = write_results(bench.name, bench.results, context, table(bench))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
