"""PostgreSQL benchmark: Lifeboat beside pgBackRest and Barman on one cluster, in one run.

Data: ``pgbench -i -s SCALE`` (``--md5`` rewrites the blank filler with md5 text first, for
realistic compression). Scenarios, each from a cold page cache:

* full backup (Lifeboat local; pgBackRest full, zst, process-max 2; Barman full via
  pg_basebackup);
* a workload (``pgbench -T DURATION``, uniform), then a second backup (Lifeboat; pgBackRest
  incremental; Barman full again — it has no incremental with pg_basebackup);
* a skewed workload (a hot 1 % of the accounts), then a third backup; autovacuum is off and
  each workload ends with VACUUM and CHECKPOINT, so the tools, one after another, back up
  the same pages (not hint bits set in between);
* restore of the last backup into an empty directory (files only, not started);
* WAL: the sustained archive rate while pgbench writes as fast as it can, Lifeboat's
  archive_command beside pgBackRest's async archive-push (process-max 2): the archive lag in
  segments must not grow.

For each: wall time, CPU time (user+sys), peak RSS, repository bytes. Results go to
bench/results/pg-<date>.md and .json. Run as root on a quiet machine:

    python bench/pg_bench.py [--scale 100] [--duration 60] [--md5] [--keep]

Needs PostgreSQL 15 and the Debian packages pgbackrest and barman.
"""

from __future__ import annotations

import argparse
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
    dir_bytes,
    drop_caches,
    machine,
    require,
    run_measured,
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
SKEWED = "\\set aid random_exponential(1, 100000 * :scale, 100)\n" + (
    "\\set bid random(1, 1 * :scale)\n\\set tid random(1, 10 * :scale)\n\\set delta random(-5000, 5000)\n"
    "BEGIN;\nUPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n"
    "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
    "UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;\n"
    "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;\n"
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);\n"
    "END;\n"
)


WAL_DIRECTORIES = ("wal", "archive", "wals")  # Lifeboat, pgBackRest, Barman


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


class Bench:
    def __init__(self, work: Path, *, scale: int, duration: int, md5: bool) -> None:
        self.work = work
        self.scale = scale
        self.duration = duration
        self.md5 = md5
        self.results: list[Measurement] = []
        self.notes: dict[str, object] = {}
        self.cluster = ScratchCluster(work / "pg", port=free_port())
        self.lifeboat_repo = work / "repo-lifeboat"
        self.password_file = work / "passphrase"
        self.pgbr_conf = work / "pgbackrest.conf"
        self.pgbr_repo = work / "repo-pgbackrest"
        self.barman_home = work / "repo-barman"
        self.barman_conf = work / "barman.conf"
        self.receive_wal: subprocess.Popen[bytes] | None = None
        self.server_command = server_lifeboat_command(OS_USER, mirror=work / "runtime") or (
            f"{sys.executable} -m lifeboat"
        )

    # --- environment ------------------------------------------------------------------------------
    @property
    def lifeboat_env(self) -> dict[str, str]:
        return {
            "LIFEBOAT_REPO": str(self.lifeboat_repo),
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

    def archive_command(self, *, pgbackrest_async: bool = False, lifeboat: bool = True, pgbackrest: bool = True) -> str:
        parts = []
        if lifeboat:
            env = f"LIFEBOAT_REPO={self.lifeboat_repo} LIFEBOAT_PASSWORD_FILE={self.password_file}"
            parts.append(f"{env} {self.server_command} wal-push %p")
        if pgbackrest:
            mode = "--archive-async --process-max=2" if pgbackrest_async else ""
            parts.append(f"pgbackrest --config={self.pgbr_conf} --stanza=bench {mode} archive-push %p")
        return " && ".join(parts) or "true"

    def set_archive_command(self, command: str) -> None:
        self.cluster.psql(f"ALTER SYSTEM SET archive_command = '{command.replace(chr(39), chr(39) * 2)}'")
        self.cluster.psql("SELECT pg_reload_conf()")

    # --- set-up --------------------------------------------------------------------------------------
    def setup(self) -> None:
        print(f"setting up a pgbench -s {self.scale} cluster in {self.work}", flush=True)
        os.chmod(self.work, 0o755)
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        chown_tree(self.password_file, OS_USER)
        env = {**os.environ, **self.lifeboat_env, "LIFEBOAT_PASSWORD": ""}
        subprocess.run(self.lifeboat("init"), env=env, check=True, capture_output=True)
        chown_tree(self.lifeboat_repo, OS_USER)
        for directory in (self.pgbr_repo, self.barman_home):
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
                "archive_mode": "on",
                "archive_command": self.archive_command(),
                "max_wal_size": "4GB",
                "shared_buffers": "256MB",
                "synchronous_commit": "off",
                "max_replication_slots": "10",
                "autovacuum": "off",  # the bench vacuums after each workload: every tool sees the same pages
            },
        )
        c.start()
        done = c.client("pgbench", "-i", "-q", "-s", str(self.scale), "postgres", timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"pgbench -i failed: {done.stderr.decode()}")
        if self.md5:
            c.psql("UPDATE pgbench_accounts SET filler = md5(aid::text) || md5((aid * 7)::text) || md5(aid::text)")
            c.psql("VACUUM FULL pgbench_accounts")
        c.psql("CHECKPOINT")
        subprocess.run(self.pgbackrest("stanza-create"), check=True, capture_output=True)
        subprocess.run(self.barman("receive-wal", "--create-slot", "bench"), check=False, capture_output=True)
        self.receive_wal = subprocess.Popen(
            self.barman("receive-wal", "bench"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.barman_archive()  # Barman refuses a first backup before it has archived WAL
        self.notes["data_bytes"] = dir_bytes(c.data_dir) - dir_bytes(c.data_dir / "pg_wal")
        time.sleep(2.5)  # files written this close to the first backup are re-read by Lifeboat's second

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
            f"  {tool:10} {scenario:16} {result.wall_s:7.2f}s wall {result.cpu_s:7.2f}s cpu "
            f"{result.peak_rss_mib:6.0f} MiB rss  +{result.repo_bytes / 1e6:9.1f} MB",
            flush=True,
        )

    def backups(self, scenario: str) -> None:
        print(f"{scenario}:", flush=True)
        kind = "full" if scenario == "full backup" else "incr"
        self.measure(
            "lifeboat", scenario, self.lifeboat("backup", "postgres", *self.conn()),
            self.lifeboat_repo, self.lifeboat_env,
        )  # fmt: skip
        self.measure("pgbackrest", scenario, self.pgbackrest("backup", f"--type={kind}"), self.pgbr_repo)
        self.measure("barman", scenario, self.barman("backup", "bench"), self.barman_home)
        self.barman_archive()

    def workload(self, name: str, *, skewed: bool) -> None:
        print(f"workload {name}: pgbench -T {self.duration}", flush=True)
        args = ["-T", str(self.duration), "-c", "4", "-j", "2", "-n"]
        if skewed:
            script = self.work / "skewed.sql"
            script.write_text(SKEWED)
            args += ["-f", str(script)]
        done = self.cluster.client("pgbench", *args, "postgres", timeout=self.duration * 4 + 600)
        tps = next((line for line in done.stdout.decode().splitlines() if line.startswith("tps")), "")
        self.notes[f"workload_{name}"] = tps
        self.cluster.psql("VACUUM")  # hint bits and visibility map set now, not during one tool's backup
        self.cluster.psql("CHECKPOINT")
        time.sleep(2.5)

    def restores(self) -> None:
        print("restore:", flush=True)
        targets = {t: self.work / f"restore-{t}" for t in ("lifeboat", "pgbackrest", "barman")}
        for path in targets.values():
            path.mkdir()
            chown_tree(path, OS_USER)
        self.measure(
            "lifeboat", "restore",
            self.lifeboat("restore", "postgres", "--target-dir", str(targets["lifeboat"]), "--immediate"),
            self.lifeboat_repo, self.lifeboat_env,
        )  # fmt: skip
        self.measure(
            "pgbackrest", "restore",
            self.pgbackrest("restore", f"--pg1-path={targets['pgbackrest']}", "--type=immediate"), self.pgbr_repo,
        )  # fmt: skip
        recover = self.barman("recover", "bench", "latest", str(targets["barman"]))
        self.measure("barman", "restore", recover, self.barman_home)
        for path in targets.values():
            shutil.rmtree(path, ignore_errors=True)

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

    def wal_rate(self, tool: str) -> None:
        ours = tool == "lifeboat"
        command = self.archive_command(lifeboat=ours, pgbackrest=not ours, pgbackrest_async=True)
        self.set_archive_command(command)
        args = ["-T", str(self.duration), "-c", "4", "-j", "2", "-n", "-N", "postgres"]
        commits = "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'"
        commits_before = int(self.cluster.psql(commits))
        load = self.cluster.background("pgbench", *args)
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


def table(bench: Bench) -> str:
    lines = [
        f"# PostgreSQL benchmark (pgbench -s {bench.scale}{', md5 filler' if bench.md5 else ''}, "
        f"{bench.duration} s workloads)",
        "",
        f"Data directory without WAL: {int(bench.notes.get('data_bytes', 0)) / 1e9:.2f} GB. "
        + " ".join(f"{k}: {v}." for k, v in bench.notes.items() if k.startswith("workload")),
        "",
        "| tool | scenario | wall s | user+sys s | peak RSS MiB | repo +MB |",
        "|---|---|---|---|---|---|",
    ]
    for m in bench.results:
        if m.scenario == "wal archiving":
            continue
        lines.append(
            f"| {m.tool} | {m.scenario} | {m.wall_s:.2f} | {m.cpu_s:.2f} | {m.peak_rss_mib:.0f} "
            f"| {m.repo_bytes / 1e6:.1f} |"
        )
    lines += [
        "",
        "| tool | WAL under pgbench -N | pgbench tps | segments/s | max lag | final lag | lag growing | drain s |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|")
    for m in bench.results:
        if m.scenario == "wal archiving":
            e = m.extra
            lines.append(
                f"| {m.tool} | {e['segments_written']} segments in {m.wall_s:.0f}s | {e.get('pgbench_tps', '')} "
                f"| {e['segments_per_second']} | "
                f"{e['max_lag_segments']} | {e['final_lag_segments']} | {e['lag_growing']} | {e['drain_seconds']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="PostgreSQL backup benchmark: Lifeboat, pgBackRest, Barman")
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--duration", type=int, default=60, help="seconds of each pgbench workload")
    parser.add_argument("--md5", action="store_true", help="realistic (less compressible) filler")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--workdir", default="/var/tmp")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (cold caches; the cluster runs as postgres)")
    require("pgbackrest", "pgbackrest")
    require("barman", "barman")
    find_program("pg_basebackup")
    work = Path(tempfile.mkdtemp(prefix="lifeboat-pgbench-", dir=args.workdir))
    bench = Bench(work, scale=args.scale, duration=args.duration, md5=args.md5)
    try:
        bench.setup()
        bench.backups("full backup")
        bench.workload("uniform", skewed=False)
        bench.backups("second backup")
        bench.workload("skewed", skewed=True)
        bench.backups("third (skewed)")
        bench.restores()
        print("WAL archiving under full-speed pgbench:", flush=True)
        bench.wal_rate("lifeboat")
        bench.wal_rate("pgbackrest")
    finally:
        bench.close(args.keep)
    context = {
        **machine(),
        "scale": args.scale,
        "duration_s": args.duration,
        "md5": args.md5,
        "pgbackrest": version_of(["pgbackrest", "version"]),
        "barman": version_of(["barman", "--version"]),
        "postgres": version_of([find_program("postgres"), "--version"]),
        **bench.notes,
    }
    path = write_results(f"pg-s{args.scale}", bench.results, context, table(bench))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
