"""The cost of proving archived WAL before it is relied on: the pre-check ``restore postgres``
runs before writing anything, and ``check --read-data``, over an archive of real pgbench WAL,
beside the recovery that replays the same segments.

A cluster archives into a local repository; after a base backup, whole-table updates of
``pgbench_accounts`` and ``pgbench -N`` transactions write until SEGMENTS segments are
archived past it. Then, each in its own process (GNU time: wall, CPU,
peak RSS): the pre-check exactly as the restore runs it (``pitr.check_wal`` with
``verify_recovery_wal``) with 1, 2 and 4 workers; ``check --read-data``; and a whole
``restore postgres --start`` to the end of the archive, whose replay time PostgreSQL reports.

    python bench/wal_verify_bench.py [--segments 200] [--keep]

Results go to bench/results/walverify-<date>.md and .json. Needs PostgreSQL and pgbench.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from common import Measurement, dir_bytes, drop_caches, machine, run_measured, write_results  # noqa: E402

from lifeboat.sources.tools.pgcluster import (  # noqa: E402
    ScratchCluster,
    chown_tree,
    free_port,
    server_lifeboat_command,
)

OS_USER = "postgres"
PASSWORD = "benchmark-passphrase"

PRECHECK = """
import sys, time
from lifeboat.core.basebackup import RestoreTarget, base_backups
from lifeboat.core.wal import TimelineHistory, WalFileKind
from lifeboat.operations.pitr import check_wal
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive
from lifeboat.repository.walverify import verify_recovery_wal
from lifeboat.storage.local import LocalBackend

repo = Repository.open(LocalBackend(sys.argv[1]), sys.argv[2].encode())
backup = base_backups(repo.snapshots())[-1]
archive = WalArchive(repo, backup.system_id)
archived = {f.name for f in archive.files() if f.parsed.kind is WalFileKind.SEGMENT}
history = TimelineHistory.root(1)
workers = int(sys.argv[3])
read = []
started = time.monotonic()
last, _ = check_wal(
    backup, history, RestoreTarget(), archived,
    verify=lambda needed: read.append((len(needed), verify_recovery_wal(archive, needed, history, workers=workers))),
)
print(read[0][0], read[0][1], round(time.monotonic() - started, 3), last)
"""


class Bench:
    def __init__(self, work: Path, segments: int) -> None:
        self.work = work
        self.segments = segments
        self.repo = work / "repo"
        self.password_file = work / "passphrase"
        self.cluster = ScratchCluster(work / "pg", port=free_port())
        self.server_command = server_lifeboat_command(OS_USER, mirror=work / "runtime") or (
            f"{sys.executable} -m lifeboat"
        )
        self.results: list[Measurement] = []
        self.notes: dict[str, object] = {}

    @property
    def env(self) -> dict[str, str]:
        return {
            "LIFEBOAT_REPO": str(self.repo),
            "LIFEBOAT_PASSWORD_FILE": str(self.password_file),
            "LIFEBOAT_SERVER_COMMAND": self.server_command,
            "LIFEBOAT_CONFIG": "",
            "PYTHONPATH": str(HERE.parent / "src"),
        }

    def lifeboat(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lifeboat", *argv],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=True,
        )

    def conn(self) -> list[str]:
        return ["--host", str(self.cluster.socket_dir), "--port", str(self.cluster.port), "--user", "postgres"]

    def archived_segments(self) -> list[str]:
        names: list[str] = []
        for _root, _dirs, files in os.walk(self.repo / "wal"):
            names.extend(n for n in files if len(n) == 24)
        return sorted(names)

    def setup(self) -> None:
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        self.lifeboat("init")
        chown_tree(self.repo, OS_USER)
        chown_tree(self.password_file, OS_USER)
        env = f"LIFEBOAT_REPO={self.repo} LIFEBOAT_PASSWORD_FILE={self.password_file}"
        self.cluster.init(
            settings={
                "archive_mode": "on",
                "archive_command": f"{env} {self.server_command} wal-push %p",
                "max_wal_size": "1GB",
            }
        )
        self.cluster.start()
        self.cluster.client("pgbench", "-i", "-s", "10", "-q")
        backup = json.loads(self.lifeboat("--json", "backup", "postgres", *self.conn()).stdout)
        self.notes["base_backup"] = backup.get("snapshot", backup)
        first = len(self.archived_segments())
        started = time.monotonic()
        rounds = 0
        while len(self.archived_segments()) < first + self.segments:
            # Every account updated once: heap updates, index entries and full-page images,
            # about 15 segments a round at scale 10 — pgbench's own WAL, written fast.
            self.cluster.psql("UPDATE pgbench_accounts SET abalance = abalance + 1")
            self.cluster.client("pgbench", "-N", "-t", "200", "-c", "2", "-j", "2")
            rounds += 1
        self.notes["workload"] = f"{rounds} rounds of a whole-table UPDATE and 400 pgbench -N transactions"
        self.notes["workload_seconds"] = round(time.monotonic() - started, 1)
        last = self.cluster.psql("SELECT pg_walfile_name(pg_switch_wal())")
        while last not in self.archived_segments():
            time.sleep(0.2)
        self.cluster.stop()
        wal = self.repo / "wal"
        self.notes["archived_segments"] = len(self.archived_segments())
        self.notes["wal_stored_mib"] = round(dir_bytes(wal) / 2**20, 1)

    def precheck(self, workers: int) -> None:
        drop_caches()
        out = self.work / "precheck.out"
        argv = [sys.executable, "-c", PRECHECK, str(self.repo), PASSWORD, str(workers)]
        with out.open("w") as sink:
            subprocess.run(argv, env={**os.environ, **self.env}, stdout=sink, check=True)
        needed, read_bytes, seconds, last = out.read_text().split()
        drop_caches()
        m = run_measured("lifeboat", f"restore pre-check, {workers} workers", argv, env=self.env)
        m.extra = {"segments": int(needed), "stored_mib": round(int(read_bytes) / 2**20, 1), "last": last}
        self.results.append(m)
        self.notes[f"precheck_{workers}_inprocess_s"] = float(seconds)

    def check_read_data(self) -> None:
        drop_caches()
        argv = [sys.executable, "-m", "lifeboat", "check", "--read-data"]
        self.results.append(run_measured("lifeboat", "check --read-data (whole repository)", argv, env=self.env))

    def restore(self) -> None:
        target = self.work / "restored"
        drop_caches()
        report = self.work / "restore.json"
        argv = [
            sys.executable, "-m", "lifeboat", "--json", "restore", "postgres", "--target-dir", str(target),
            "--start", "--archive-off", "--port", str(free_port()),
        ]  # fmt: skip
        started = time.monotonic()
        with report.open("w") as sink:
            subprocess.run(argv, env={**os.environ, **self.env}, stdout=sink, check=True)
        wall = time.monotonic() - started
        doc = json.loads(report.read_text())
        recovery = doc["recovery"]["seconds"]
        self.results.append(
            Measurement(
                "lifeboat",
                "restore postgres --start (latest)",
                wall,
                0.0,
                0.0,
                extra={"recovery_s": recovery, "files_s": doc["restore_seconds"], "checked": doc["wal_checked_until"]},
            )
        )
        subprocess.run(["pg_ctl", "-D", str(target), "stop", "-m", "immediate"], check=False, capture_output=True)
        if os.geteuid() == 0:
            subprocess.run(
                ["runuser", "-u", OS_USER, "--", "pg_ctl", "-D", str(target), "stop", "-m", "immediate"],
                check=False,
                capture_output=True,
            )

    def table(self) -> str:
        lines = [
            f"# Proving archived WAL: {self.notes['archived_segments']} archived segments of pgbench WAL",
            "",
            f"WAL stored: {self.notes['wal_stored_mib']} MiB (compressed, encrypted). Machine: {machine()}.",
            "",
            "| scenario | wall s | user+sys s | peak RSS MiB | notes |",
            "|---|---|---|---|---|",
        ]
        for m in self.results:
            notes = ", ".join(f"{k} {v}" for k, v in m.extra.items())
            cpu, rss = (f"{m.cpu_s:.2f}", f"{m.peak_rss_mib:.0f}") if m.peak_rss_mib else ("–", "–")
            lines.append(f"| {m.scenario} | {m.wall_s:.2f} | {cpu} | {rss} | {notes} |")
        lines += ["", "Pre-check alone (in process, after imports and key): "]
        lines += [f"- {k}: {v}" for k, v in self.notes.items() if k.startswith("precheck_")]
        return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lifeboat-walverify-bench-", dir="/var/tmp"))
    os.chmod(work, 0o755)
    bench = Bench(work, args.segments)
    try:
        bench.setup()
        for workers in (1, 2, 4):
            bench.precheck(workers)
        bench.check_read_data()
        bench.restore()
        path = write_results("walverify", bench.results, {"machine": machine(), **bench.notes}, bench.table())
        print(path.read_text())
    finally:
        if bench.cluster.running():
            bench.cluster.stop("immediate", check=False)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
