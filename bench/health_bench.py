"""How fast ``lifeboat health`` answers on a large repository: 5,000 snapshots and 100,000
archived WAL objects, with its local metadata cache cold (first run) and warm (later runs).
Each snapshot comes with an index file (as each backup's write session writes one), which
health reads for the repository's size (the metrics' ``lifeboat_repository_data_bytes``).

The repository is built quickly and directly through the repository API, in a local
directory: snapshot records (files sources and PostgreSQL base backups, each with a record
a real backup would write) saved with ``Repository.save_snapshot``, and small WAL objects —
each a sealed, named object as ``WalArchive`` stores it, holding a few bytes instead of 16 MiB
(health reads names and times, never WAL content) — written with ``backend.put``. The local
backend is opened without fsync for the build only. Then ``lifeboat health`` runs as a user
runs it (a new process, the passphrase from a file, the default key derivation), each run
measured with GNU time; the run's JSON says how many snapshot records it fetched.

    python bench/health_bench.py [--snapshots 5000] [--wal 100000] [--runs 3] [--keep DIR]

Results go to bench/results/health-<date>.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from common import Measurement, dir_bytes, machine, run_measured, write_results  # noqa: E402

from lifeboat.core.basebackup import BaseBackup  # noqa: E402
from lifeboat.core.ids import BlobType  # noqa: E402
from lifeboat.core.snapshot import Snapshot  # noqa: E402
from lifeboat.core.tree import Tree  # noqa: E402
from lifeboat.core.wal import Lsn, WalSegment  # noqa: E402
from lifeboat.repository.index import IndexedPack, IndexFile  # noqa: E402
from lifeboat.repository.pack import PackEntry  # noqa: E402
from lifeboat.repository.repo import Repository  # noqa: E402
from lifeboat.repository.session import WriteSession  # noqa: E402
from lifeboat.repository.wal import WalArchive  # noqa: E402
from lifeboat.storage.local import LocalBackend  # noqa: E402

PASSWORD = b"benchmark-passphrase"
SYSTEM_ID = "7300000000000000001"
FILE_SOURCES = ("web", "mail", "home", "etc", "www")
SEGMENT = 16 * 1024 * 1024


def build(root: Path, snapshots: int, wal: int) -> dict[str, object]:
    """The repository at ``root/repo`` and a configuration naming its sources."""
    started = time.monotonic()
    repo = Repository.init(LocalBackend(root / "repo", fsync=False), PASSWORD)
    now = datetime.now(UTC)
    backups = max(1, snapshots // 100)  # one base backup per 100 snapshots
    per_backup = wal // backups
    with WriteSession(repo) as session:  # one real (empty) root tree, so prune and check can walk them
        tree = session.save_tree(Tree())
        session.commit()
    for i in range(snapshots - backups):
        source = FILE_SOURCES[i % len(FILE_SOURCES)]
        when = now - timedelta(minutes=10 * (snapshots - i))
        repo.save_snapshot(
            Snapshot(
                time=when,
                source=source,
                kind="files",
                tree=tree,
                hostname="bench",
                paths=(f"/srv/{source}",),
                summary={"files_new": i % 17, "bytes_added": i * 1024},
            )
        )
    for b in range(backups):
        first = b * per_backup
        start = Lsn(first * SEGMENT + 40)
        when = now - timedelta(minutes=10 * (backups - b) * 100)
        record = BaseBackup(
            method="local",
            system_id=SYSTEM_ID,
            version="15.8",
            version_num=150008,
            timeline=1,
            start_lsn=start,
            stop_lsn=Lsn(start + 4096),
            start_time=when,
            stop_time=when + timedelta(seconds=5),
            label=f"lifeboat bench {b}",
            data_directory="/var/lib/postgresql/15/main",
        )
        repo.save_snapshot(
            Snapshot(time=when, source="main-db", kind="postgres", tree=tree, extra={"postgres": record.to_json()})
        )
    for i in range(snapshots):  # an index file per backup: one pack of a few blobs
        entries = [PackEntry(BlobType.DATA, os.urandom(32), 100 * e, 100, 200) for e in range(8)]
        repo.save_index_file(IndexFile([IndexedPack(os.urandom(32), os.urandom(16), 800 + i, entries)]))
    built_snapshots = time.monotonic() - started
    archive = WalArchive(repo, SYSTEM_ID)
    sealed_at = time.monotonic()
    base = now.timestamp() - wal * 6  # a segment every 6 seconds, the newest just now
    for n in range(wal):
        name = WalSegment(1, n).name
        repo.backend.put(archive.object_name(name), archive.seal(name, b"bench"))
        path = root / "repo" / archive.object_name(name)
        stamp = base + n * 6
        os.utime(path, (stamp, stamp))
    built_wal = time.monotonic() - sealed_at
    config = root / "lifeboat.yaml"
    lines = ["repositories:", "  main:", f"    url: {root / 'repo'}", "default_repository: main", "sources:"]
    for source in FILE_SOURCES:
        lines += [f"  {source}:", "    type: files", f"    paths: [/srv/{source}]", "    rpo: 1d"]
    # A cluster that cannot be reached: health says UNKNOWN for its live checks, fast.
    lines += ["  main-db:", "    type: postgres", "    method: stream", "    host: 127.0.0.1", "    port: 9"]
    lines += ["    rpo: 1h"]
    config.write_text("\n".join(lines) + "\n")
    return {
        "snapshots": snapshots,
        "base_backups": backups,
        "wal_objects": wal,
        "build_snapshots_s": round(built_snapshots, 1),
        "build_wal_s": round(built_wal, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshots", type=int, default=5000)
    parser.add_argument("--wal", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build in (or reuse) this directory and keep it")
    parser.add_argument("--no-write", action="store_true", help="print, do not write bench/results")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="lifeboat-health-bench-", dir="/var/tmp"))
    try:
        if (root / "repo").exists():
            built: dict[str, object] = json.loads((root / "built.json").read_text())
        else:
            root.mkdir(parents=True, exist_ok=True)
            built = build(root, args.snapshots, args.wal)
            (root / "built.json").write_text(json.dumps(built))
        password_file = root / "passphrase"
        password_file.write_bytes(PASSWORD + b"\n")
        state = root / "state"
        shutil.rmtree(state, ignore_errors=True)
        env = {
            **os.environ,
            "LIFEBOAT_CONFIG": str(root / "lifeboat.yaml"),
            "LIFEBOAT_PASSWORD_FILE": str(password_file),
            "LIFEBOAT_STATE_DIR": str(state),
            "PYTHONPATH": str(HERE.parent / "src"),
        }
        env.pop("LIFEBOAT_REPO", None)
        env.pop("LIFEBOAT_PASSWORD", None)
        measurements: list[Measurement] = []
        for run in range(args.runs):
            scenario = "cold cache (first run)" if run == 0 else f"warm cache (run {run + 1})"
            out = root / f"run-{run}.json"
            # health exits with the Nagios code of its state (3: the cluster is unreachable); keep it
            argv = ["sh", "-c", f"{sys.executable} -m lifeboat --json health > {out}; echo $? > {out}.code"]
            m = run_measured("lifeboat health", scenario, argv, env=env)
            doc = json.loads(out.read_text())
            m.exit_code = int(Path(f"{out}.code").read_text())
            m.extra = {
                "state": doc["state"],
                "snapshot_records_fetched": doc["cache"]["snapshots_fetched"],
                "history_files_fetched": doc["cache"]["history_fetched"],
                "index_files_fetched": doc["cache"].get("index_fetched"),
                "in_process_s": doc["seconds"],
            }
            m.repo_bytes = dir_bytes(root / "repo")
            measurements.append(m)
        context = {**built, "machine": machine(), "load_average_1m": round(os.getloadavg()[0], 1)}
        rows = "\n".join(
            f"| {m.scenario} | {m.wall_s:.2f} | {m.cpu_s:.2f} | {m.peak_rss_mib:.0f} | "
            f"{m.extra['snapshot_records_fetched']} / {m.extra['index_files_fetched']} | "
            f"{m.extra['in_process_s']} | {m.extra['state']} ({m.exit_code}) |"
            for m in measurements
        )
        table = (
            f"# lifeboat health: {built['snapshots']} snapshots, {built['wal_objects']} WAL objects\n\n"
            f"Local repository; built in {built['build_snapshots_s']} s (snapshots) + {built['build_wal_s']} s "
            f"(WAL). Machine: {context['machine']}; load average {context['load_average_1m']} (shared).\n\n"
            "| scenario | wall s | user+sys s | peak RSS MiB | snapshot records / index files fetched | in-process s "
            "| state (exit) |\n"
            "|---|---|---|---|---|---|---|\n"
            f"{rows}\n\n"
            "Wall time is the whole process: interpreter start, imports, key derivation (argon2id, the default\n"
            "cost), the listing of snapshots/, index/ and wal/, the health rules and the JSON. The cluster is\n"
            "configured but not reachable (its live checks are UNKNOWN). Target: under 2 s.\n"
        )
        if args.no_write:
            print(table)
        else:
            print(write_results("health", measurements, context, table))
            print(table)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
