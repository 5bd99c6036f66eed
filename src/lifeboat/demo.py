"""``make demo``: a disaster-recovery drill on a throwaway PostgreSQL cluster.

It sets up a repository and a cluster that archives its WAL into it (``pg setup
--apply``, ``pg check``), takes a base backup while a workload runs, then has an
accident — ``DROP TABLE`` — and restores the cluster to the moment just before it with
``restore postgres --time … --start``. It verifies every row and reports the recovery
point and recovery time achieved. A short files backup and restore comes first.

Everything happens below a temporary directory that is removed at the end (``--keep``
keeps it). Run as root, the cluster belongs to the ``postgres`` user.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lifeboat.errors import LifeboatError, MissingTool
from lifeboat.sources.tools.pg import find_program
from lifeboat.sources.tools.pgcluster import (
    ScratchCluster,
    chown_tree,
    default_os_user,
    free_port,
    run_lifeboat,
    server_lifeboat_command,
)

ORDERS_BATCH = (
    "INSERT INTO orders(customer, amount) SELECT 'customer-' || (g % 97), (g % 1000) / 10.0"
    " FROM generate_series(1, 500) g"
)


class DemoFailed(Exception):
    """A step of the demo did not do what it should."""


class Demo:
    def __init__(self, workspace: Path, *, verbose: bool) -> None:
        self.workspace = workspace
        self.verbose = verbose
        self.os_user = default_os_user()
        self.repo = workspace / "repository"
        self.password_file = workspace / "passphrase"
        self.env: dict[str, str] = {}
        self.started = time.monotonic()
        self.clusters: list[ScratchCluster] = []

    # --- output ------------------------------------------------------------------------------
    def step(self, text: str) -> None:
        print(f"\n[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def say(self, text: str) -> None:
        print(f"          {text}", flush=True)

    def lifeboat(self, *argv: str, expect: int = 0) -> str:
        if self.verbose:
            self.say("$ lifeboat " + " ".join(argv))
        done = run_lifeboat(argv, self.env, timeout=900)
        if done.returncode != expect:
            raise DemoFailed(
                f"'lifeboat {' '.join(argv)}' exited {done.returncode}:\n{done.stderr.strip()}\n{done.stdout.strip()}"
            )
        return done.stdout

    def lifeboat_json(self, *argv: str) -> Any:
        return json.loads(self.lifeboat("--json", *argv))

    # --- steps -------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.step("Preparing a repository (encrypted, deduplicated) in " + str(self.repo))
        for program in ("initdb", "pg_ctl", "psql", "pg_basebackup"):
            find_program(program)
        self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
        self.password_file.chmod(0o600)
        chown_tree(self.password_file, self.os_user)
        self.env = {
            "LIFEBOAT_REPO": str(self.repo),
            "LIFEBOAT_PASSWORD_FILE": str(self.password_file),
            "LIFEBOAT_PASSWORD": "",
            "LIFEBOAT_PASSWORD_COMMAND": "",
            "LIFEBOAT_CONFIG": "",
        }
        command = server_lifeboat_command(self.os_user, mirror=self.workspace / "runtime")
        if command:
            self.env["LIFEBOAT_SERVER_COMMAND"] = command
        self.lifeboat("init")
        chown_tree(self.repo, self.os_user)  # the server archives into it as its own user
        self.say("the passphrase lives in a 0600 file; it never appears on a command line")

    def files_round_trip(self) -> None:
        self.step("Warm-up: back up a directory of files and restore it")
        source = self.workspace / "files"
        (source / "docs").mkdir(parents=True)
        for i in range(50):
            (source / "docs" / f"note-{i}.txt").write_text(f"note {i}\n" * (i + 1))
        (source / "image.bin").write_bytes(os.urandom(256 * 1024))
        backup = self.lifeboat_json("backup", str(source), "--tag", "demo")
        self.say(f"snapshot {backup['snapshot']['short_id']}: {backup['files_new']} files")
        target = self.workspace / "files-restored"
        self.lifeboat("restore", "latest", "--target", str(target))
        restored = target / source.relative_to("/")
        for path in source.rglob("*"):
            if path.is_file() and (restored / path.relative_to(source)).read_bytes() != path.read_bytes():
                raise DemoFailed(f"{path} was not restored identically")
        self.say("every file restored byte for byte")

    def cluster(self) -> ScratchCluster:
        self.step("Starting a throwaway PostgreSQL cluster and setting up WAL archiving")
        cluster = ScratchCluster(self.workspace / "pg", os_user=self.os_user)
        self.clusters.append(cluster)
        cluster.init(checksums=True)
        cluster.start()
        self.say(f"PostgreSQL {cluster.psql('SHOW server_version')} on port {cluster.port}, data in {cluster.data_dir}")
        conn = ["--host", str(cluster.socket_dir), "--port", str(cluster.port), "--user", "postgres"]
        setup = self.lifeboat_json("pg", "setup", *conn, "--apply")
        for name, value in setup["changes"].items():
            self.say(f"ALTER SYSTEM SET {name} = {value!r}" if name != "archive_command" else f"{name} = {value}")
        cluster.stop()
        cluster.start()
        check = self.lifeboat_json("pg", "check", *conn)
        if not check["ok"]:
            raise DemoFailed("pg check failed: " + json.dumps(check["checks"], indent=2))
        self.say(f"pg check: archiving works (a WAL segment reached the repository in {check['round_trip_seconds']}s)")
        return cluster

    def workload(self, cluster: ScratchCluster, batches: int, first: int = 0) -> None:
        for batch in range(first, first + batches):
            cluster.psql(ORDERS_BATCH)
            cluster.psql(f"INSERT INTO audit(note) VALUES ('batch {batch}')")  # noqa: S608 - a loop counter
            time.sleep(0.1)

    def run(self) -> dict[str, Any]:
        self.prepare()
        self.files_round_trip()
        cluster = self.cluster()
        conn = ["--host", str(cluster.socket_dir), "--port", str(cluster.port), "--user", "postgres"]

        self.step("Workload: an online shop takes orders")
        cluster.psql(
            "CREATE TABLE orders(id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric(10,2) NOT NULL,"
            " placed_at timestamptz NOT NULL DEFAULT clock_timestamp());"
            " CREATE TABLE audit(id bigserial PRIMARY KEY, note text, at timestamptz DEFAULT clock_timestamp())"
        )
        self.workload(cluster, 5)
        so_far = cluster.psql("SELECT count(*) FROM orders")
        self.say(f"{so_far} orders so far")

        self.step("Base backup (method local: the data directory is read in backup mode, in parallel)")
        backup = self.lifeboat_json("backup", "postgres", *conn)
        record = backup["postgres"]
        self.say(
            f"snapshot {backup['snapshot']['short_id']}: {backup['files_new']} files, "
            f"WAL {record['start_wal']}..{record['stop_wal']}, {backup['duration_seconds']}s; "
            f"its WAL was archived {backup['wal_wait_seconds']}s after it stopped"
        )

        self.step("More orders arrive after the backup (their WAL is archived continuously)")
        self.workload(cluster, 10, first=5)
        before = cluster.psql("SELECT count(*), sum(amount) FROM orders")
        last_commit = cluster.psql("SELECT max(placed_at) FROM orders")
        time.sleep(0.3)
        recovery_point = cluster.psql("SELECT clock_timestamp()")
        time.sleep(0.3)
        count, total = before.split("|")
        self.say(f"{count} orders worth {total} — the last one committed at {last_commit}")

        self.step("ACCIDENT: someone runs DROP TABLE orders on production")
        cluster.psql("DROP TABLE orders")
        accident = cluster.psql("SELECT clock_timestamp()")
        cluster.psql("INSERT INTO audit(note) VALUES ('life goes on after the accident')")
        self.say(f"dropped at about {accident}; the orders are gone from the live database")
        segment = cluster.psql("SELECT pg_walfile_name(pg_switch_wal())")
        self._wait_archived(segment)

        info = self.lifeboat_json("pg", "info")["clusters"][0]
        window = info["recoverable"]
        self.say(f"pg info: recoverable from {window['earliest_time']} to WAL {window['latest_wal']}")

        self.step(f"Point-in-time restore to {recovery_point}, just before the accident")
        target = self.workspace / "pg-restored"
        port = free_port()
        started = time.monotonic()
        restored = self.lifeboat_json(
            "restore", "postgres", "--target-dir", str(target), "--time", recovery_point,
            "--start", "--port", str(port), "--archive-off",
        )  # fmt: skip
        rto = time.monotonic() - started
        copy = ScratchCluster(self.workspace / "pg-restored-handle", port=port, data_dir=target, os_user=self.os_user)
        copy.socket_dir = cluster.socket_dir
        self.clusters.append(copy)
        recovery = restored["recovery"]
        self.say(
            f"restored base backup {restored['snapshot'][:8]} ({restored['restored']['files']} files) "
            f"in {restored['restore_seconds']}s; replayed WAL and promoted in {recovery['seconds']}s"
        )
        if recovery.get("stop"):
            self.say(f"PostgreSQL: {recovery['stop']}")

        self.step("Verifying the restored database")
        after = copy.psql("SELECT count(*), sum(amount) FROM orders")
        if after != before:
            raise DemoFailed(f"restored orders {after!r} differ from the orders before the accident {before!r}")
        newest = copy.psql("SELECT max(placed_at) FROM orders")
        self.say(f"{count} orders worth {total}: every order committed before the accident is back")
        report = {
            "orders_restored": int(count),
            "orders_lost": 0,
            "recovery_point": recovery_point,
            "accident": accident,
            "last_order_committed": newest,
            "recovery_time_seconds": round(rto, 1),
            "restore_seconds": restored["restore_seconds"],
            "replay_and_promotion_seconds": recovery["seconds"],
            "timeline": recovery["timeline"],
        }
        self.step("Report")
        self.say(f"Recovery point (RPO): {recovery_point}; orders lost: 0 of {count}")
        self.say(f"  the restored database ends {self._gap(newest, accident)} before the accident")
        self.say(f"Recovery time (RTO): {rto:.1f}s from 'lifeboat restore postgres' to a promoted, writable database")
        self.say(f"  (restore {restored['restore_seconds']}s + WAL replay and promotion {recovery['seconds']}s)")
        return report

    def _gap(self, newest: str, accident: str) -> str:
        from datetime import datetime

        try:
            delta = datetime.fromisoformat(accident) - datetime.fromisoformat(newest)
        except ValueError:
            return "just"
        return f"{delta.total_seconds():.2f}s"

    def _wait_archived(self, segment: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.lifeboat_json("pg", "info")
            clusters = info["clusters"]
            if clusters and any(
                r["first"] <= segment <= r["last"] for t in clusters[0]["wal"]["timelines"] for r in t["ranges"]
            ):
                return
            time.sleep(0.3)
        raise DemoFailed(f"WAL segment {segment} did not reach the repository within {timeout:.0f}s")

    def close(self, keep: bool) -> None:
        for cluster in reversed(self.clusters):
            try:
                if cluster.data_dir.exists() and cluster.running():
                    cluster.stop("fast", check=False)
            except LifeboatError:
                continue
        if keep:
            print(f"\nkept everything in {self.workspace}")
        else:
            shutil.rmtree(self.workspace, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lifeboat.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the workspace (cluster, repository) afterwards")
    parser.add_argument("--verbose", "-v", action="store_true", help="show every lifeboat command run")
    parser.add_argument("--json", action="store_true", help="print the final report as JSON too")
    args = parser.parse_args(argv)
    base = "/var/tmp" if os.path.isdir("/var/tmp") else None  # noqa: S108 - mkdtemp makes it private
    workspace = Path(tempfile.mkdtemp(prefix="lifeboat-demo-", dir=base))
    os.chmod(workspace, 0o755)  # noqa: S103 - the server's OS user must reach its directories
    demo = Demo(workspace, verbose=args.verbose)
    print("Lifeboat disaster-recovery demo: PostgreSQL point-in-time recovery after an accident")
    try:
        report = demo.run()
    except MissingTool as exc:
        print(f"\ndemo cannot run: {exc.message}\n  hint: {exc.hint} (make demo installs PostgreSQL)", file=sys.stderr)
        demo.close(args.keep)
        return 15
    except (DemoFailed, LifeboatError) as exc:
        print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
        demo.close(True)
        return 1
    demo.close(args.keep)
    if args.json:
        print(json.dumps(report, indent=2))
    print("\ndemo finished: the accident was undone with no committed order lost")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
