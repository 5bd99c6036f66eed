"""Drill benchmark: Lifeboat's whole restore drill beside pgBackRest's restore + start of the
same data, in one run.

One ``pgbench -i -s SCALE`` cluster archives into both repositories (one archive_command runs
both). Each tool takes a full backup; a short pgbench workload then writes WAL that recovery
must replay, and the last segment is switched and archived into both. Then, from a cold page
cache each time:

* **Lifeboat**: ``lifeboat drill`` — plan (choose the backup, prove and read back the WAL),
  restore, WAL replay to the end of the archive, start and promote a scratch cluster,
  validation queries (the account count, the newest history row), tear-down, record;
* **pgBackRest**: ``pgbackrest restore`` (the default type: recover to the end of the archive,
  ``--archive-mode=off``) into an empty directory, ``pg_ctl start`` on a private socket, wait
  until it is promoted, the same account count, stop, remove.

The target: Lifeboat's whole drill no slower than pgBackRest's restore + start. The drill's
own phase times (from its record) are reported beside. Results go to
bench/results/drill-s<scale>-<date>.md and .json. Run as root on a quiet machine:

    python bench/drill_bench.py [--scale 100] [--duration 20] [--keep]

Needs PostgreSQL 15 and the Debian package pgbackrest.
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

from common import (  # noqa: E402 - bench/ is not a package
    Measurement,
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


def as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *argv]


class DrillBench:
    def __init__(self, work: Path, *, scale: int, duration: int) -> None:
        self.work = work
        self.scale = scale
        self.duration = duration
        self.results: list[Measurement] = []
        self.notes: dict[str, object] = {}
        self.cluster = ScratchCluster(work / "pg", port=free_port())
        self.lifeboat_repo = work / "repo-lifeboat"
        self.password_file = work / "passphrase"
        self.config = work / "lifeboat.yaml"
        self.state = work / "state"
        self.scratch = work / "scratch"
        self.pgbr_conf = work / "pgbackrest.conf"
        self.pgbr_repo = work / "repo-pgbackrest"
        self.server_command = server_lifeboat_command(OS_USER, mirror=work / "runtime") or (
            f"{sys.executable} -m lifeboat"
        )

    @property
    def lifeboat_env(self) -> dict[str, str]:
        return {
            "LIFEBOAT_REPO": str(self.lifeboat_repo),
            "LIFEBOAT_PASSWORD_FILE": str(self.password_file),
            "LIFEBOAT_SERVER_COMMAND": self.server_command,
            "LIFEBOAT_CONFIG": str(self.config),
            "LIFEBOAT_STATE_DIR": str(self.state),
            "LIFEBOAT_PASSWORD": "",
            "PYTHONPATH": str(HERE.parent / "src"),
        }

    def lifeboat(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "lifeboat", *argv]

    def pgbackrest(self, *argv: str) -> list[str]:
        return as_postgres("pgbackrest", f"--config={self.pgbr_conf}", "--stanza=bench", *argv)

    def setup(self) -> None:
        print(f"setting up a pgbench -s {self.scale} cluster in {self.work}", flush=True)
        os.chmod(self.work, 0o755)
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        chown_tree(self.password_file, OS_USER)
        env = {**os.environ, **self.lifeboat_env, "LIFEBOAT_CONFIG": ""}
        subprocess.run(self.lifeboat("init"), env=env, check=True, capture_output=True)
        chown_tree(self.lifeboat_repo, OS_USER)
        self.pgbr_repo.mkdir()
        chown_tree(self.pgbr_repo, OS_USER)
        self.scratch.mkdir()
        os.chmod(self.scratch, 0o755)
        c = self.cluster
        self.pgbr_conf.write_text(
            f"[global]\nrepo1-path={self.pgbr_repo}\nprocess-max=2\ncompress-type=zst\nstart-fast=y\n"
            f"log-level-console=warn\nlog-path={self.pgbr_repo}/log\nlock-path={self.pgbr_repo}/lock\n"
            f"spool-path={self.pgbr_repo}/spool\n\n[bench]\npg1-path={c.data_dir}\npg1-port={c.port}\n"
            f"pg1-socket-path={c.socket_dir}\n"
        )
        chown_tree(self.pgbr_conf, OS_USER)
        accounts = 100000 * self.scale
        self.config.write_text(
            "version: 1\nsources:\n  bench:\n    type: postgres\n"
            f"    data_directory: {c.data_dir}\n    host: {c.socket_dir}\n    port: {c.port}\n    user: postgres\n"
            f"    drill:\n      scratch_dir: {self.scratch}\n      time_limit: 2h\n      queries:\n"
            f'        - {{name: accounts, sql: "SELECT count(*) FROM pgbench_accounts", equals: "{accounts}"}}\n'
            '      freshness: {sql: "SELECT max(mtime) FROM pgbench_history"}\n'
        )
        push = f"LIFEBOAT_REPO={self.lifeboat_repo} LIFEBOAT_PASSWORD_FILE={self.password_file}"
        archive = (
            f"{push} {self.server_command} wal-push %p && "
            f"pgbackrest --config={self.pgbr_conf} --stanza=bench archive-push %p"
        )
        c.init(
            checksums=True,
            settings={
                "archive_mode": "on",
                "archive_command": archive,
                "max_wal_size": "4GB",
                "shared_buffers": "256MB",
                "synchronous_commit": "off",
            },
        )
        c.start()
        done = c.client("pgbench", "-i", "-q", "-s", str(self.scale), "postgres", timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"pgbench -i failed: {done.stderr.decode()}")
        c.psql("CHECKPOINT")
        subprocess.run(self.pgbackrest("stanza-create"), check=True, capture_output=True)

    def backups(self) -> None:
        print("backups:", flush=True)
        env = {**os.environ, **self.lifeboat_env}
        argv = self.lifeboat("backup", "postgres", "--source", "bench", "--archive-wait", "10min")
        subprocess.run(argv, env=env, check=True, capture_output=True)
        subprocess.run(self.pgbackrest("backup", "--type=full"), check=True, capture_output=True)
        print(f"workload: pgbench -T {self.duration} (WAL for recovery to replay)", flush=True)
        done = self.cluster.client("pgbench", "-T", str(self.duration), "-c", "4", "-j", "2", "-n", "postgres")
        tps = next((line for line in done.stdout.decode().splitlines() if line.startswith("tps")), "")
        self.notes["workload"] = tps
        last = self.cluster.psql("SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + 900
        while self.cluster.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < last:
            if time.monotonic() > deadline:
                raise SystemExit("the workload's WAL was not archived in 15 minutes")
            time.sleep(0.5)
        self.notes["wal_to_replay"] = last

    def drills(self) -> None:
        print("drills (restore, replay, start, validate):", flush=True)
        drop_caches()
        result = run_measured("lifeboat", "drill", self.lifeboat("drill", "--source", "bench"), env=self.lifeboat_env)
        report = subprocess.run(
            self.lifeboat("drill", "report", "--format", "json"),
            env={**os.environ, **self.lifeboat_env},
            check=True,
            capture_output=True,
        )
        newest = json.loads(report.stdout)["drills"][0]
        result.extra = {
            "status": newest["status"],
            "phases": {p["name"]: p["seconds"] for p in newest["phases"]},
            "rto_seconds": newest["rto_seconds"],
            "achieved_rpo_seconds": newest["achieved_rpo_seconds"],
        }
        self.results.append(result)
        self.show(result)
        if list(self.scratch.iterdir()):
            raise SystemExit(f"the drill left {list(self.scratch.iterdir())} behind")

        target = self.work / "restore-pgbackrest"
        run_dir = self.work / "run-pgbackrest"
        for path in (target, run_dir):
            path.mkdir()
            chown_tree(path, OS_USER)
        port = free_port()
        ctl = find_program("pg_ctl")
        psql = find_program("psql")
        options = f"-p {port} -c listen_addresses='' -c unix_socket_directories={run_dir} -c archive_mode=off"
        script = self.work / "pgbackrest-drill.sh"
        script.write_text(
            "set -e\n"
            f"pgbackrest --config={self.pgbr_conf} --stanza=bench restore --pg1-path={target} --archive-mode=off\n"
            f'{ctl} -D {target} -l {run_dir}/pgbackrest-drill.log -o "{options}" -w -t 3600 start\n'
            f'until [ "$({psql} -X -A -t -h {run_dir} -p {port} -U postgres -c "SELECT pg_is_in_recovery()")" = f ];'
            " do sleep 0.2; done\n"
            f'{psql} -X -A -t -h {run_dir} -p {port} -U postgres -c "SELECT count(*) FROM pgbench_accounts"\n'
            f"{ctl} -D {target} -m immediate -w stop\n"
            f"rm -rf {target}/*\n"
        )
        chown_tree(script, OS_USER)
        drop_caches()
        measured = run_measured("pgbackrest", "restore + start", as_postgres("sh", str(script)))
        self.results.append(measured)
        self.show(measured)
        shutil.rmtree(target, ignore_errors=True)

    def show(self, m: Measurement) -> None:
        phases = m.extra.get("phases")
        more = f"  phases {phases}" if phases else ""
        print(f"  {m.tool:10} {m.scenario:16} {m.wall_s:7.2f}s wall {m.cpu_s:7.2f}s cpu{more}", flush=True)

    def close(self, keep: bool) -> None:
        try:
            self.cluster.stop("fast", check=False)
        except Exception as exc:  # best effort
            print(f"could not stop the cluster: {exc}")
        if not keep:
            shutil.rmtree(self.work, ignore_errors=True)


def table(bench: DrillBench) -> str:
    by_tool = {m.tool: m for m in bench.results}
    ours, theirs = by_tool.get("lifeboat"), by_tool.get("pgbackrest")
    lines = [
        f"# Drill benchmark (pgbench -s {bench.scale}, {bench.duration} s of WAL to replay)",
        "",
        f"Workload: {bench.notes.get('workload', '')}. Both from a cold page cache, one after the other.",
        "",
        "| tool | what | wall s | user+sys s | peak RSS MiB |",
        "|---|---|---|---|---|",
    ]
    for m in bench.results:
        what = "whole drill: plan, restore, replay, start, validate, tear down" if m.tool == "lifeboat" else m.scenario
        lines.append(f"| {m.tool} | {what} | {m.wall_s:.2f} | {m.cpu_s:.2f} | {m.peak_rss_mib:.0f} |")
    if ours is not None:
        phases = ours.extra.get("phases", {})
        assert isinstance(phases, dict)
        lines += ["", "Lifeboat's phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items())]
        lines.append(f"RTO (to serving) {ours.extra.get('rto_seconds')} s; status {ours.extra.get('status')}.")
    if ours is not None and theirs is not None:
        verdict = "met" if ours.wall_s <= theirs.wall_s else "NOT met"
        lines += [
            "",
            f"Target (Lifeboat's whole drill no slower than pgBackRest's restore + start): {verdict} "
            f"({ours.wall_s:.2f} s vs {theirs.wall_s:.2f} s).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Drill benchmark: Lifeboat's drill beside pgBackRest restore+start")
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--duration", type=int, default=20, help="seconds of pgbench after the backups")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--workdir", default="/var/tmp")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (cold caches; the cluster runs as postgres)")
    require("pgbackrest", "pgbackrest")
    work = Path(tempfile.mkdtemp(prefix="lifeboat-drillbench-", dir=args.workdir))
    bench = DrillBench(work, scale=args.scale, duration=args.duration)
    try:
        bench.setup()
        bench.backups()
        bench.drills()
    finally:
        bench.close(args.keep)
    context = {
        **machine(),
        "scale": args.scale,
        "duration_s": args.duration,
        "pgbackrest": version_of(["pgbackrest", "version"]),
        "postgres": version_of([find_program("postgres"), "--version"]),
        **bench.notes,
    }
    path = write_results(f"drill-s{args.scale}", bench.results, context, table(bench))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
