"""How the metadata commands grow with the repository: ``snapshots``, ``pg info``, ``health``,
``forget --dry-run`` and ``stats`` at 1,000, 5,000 and 10,000 snapshots with 10, 50 and 100
archived WAL objects per base backup's worth (10,000 to 100,000 WAL objects).

Each repository is built quickly through the repository API (bench/health_bench.py ``build``:
snapshot records with an index file each, a base backup per 100 snapshots, small sealed WAL
objects) in a local directory. Each command then runs as a user runs it — a new process, the
passphrase from a file, the default key derivation — with an empty metadata cache (cold: a
host's first run) as the backups left the repository, one small index file and one object per
snapshot; then ``lifeboat prune`` runs (it rewrites the small index files into one and gathers
the snapshots into a bundle, docs/format.md §15), and each command runs cold again and
``--runs`` more times warm. The table gives both cold times and the median of the warm ones,
wall and CPU. Target (the issue "Recovery at the speed of the disk"): under 1 s at 10,000
snapshots and 100,000 WAL objects.

    python bench/metadata_bench.py [--sizes 1000,5000,10000] [--runs 3] [--no-write]

Results go to bench/results/metadata-<date>.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from common import Measurement, machine, run_measured, write_results  # noqa: E402
from health_bench import PASSWORD, build  # noqa: E402

from lifeboat.repository.repo import Repository  # noqa: E402
from lifeboat.storage.local import LocalBackend  # noqa: E402

COMMANDS = {
    "snapshots": ["snapshots"],
    "pg info": ["pg", "info"],
    "health": ["health"],
    "forget --dry-run": ["forget", "--keep-last", "5", "--dry-run"],
    "stats": ["stats"],
}
WAL_PER_SNAPSHOT = 10


def _env(root: Path) -> dict[str, str]:
    password_file = root / "passphrase"
    password_file.write_bytes(PASSWORD + b"\n")
    return {
        "LIFEBOAT_CONFIG": str(root / "lifeboat.yaml"),
        "LIFEBOAT_PASSWORD_FILE": str(password_file),
        "PYTHONPATH": str(HERE.parent / "src"),
    }


def _argv(args: list[str]) -> list[str]:
    # health exits with its Nagios state (3: the configured cluster is not reachable): keep going
    return ["sh", "-c", f"{sys.executable} -m lifeboat {' '.join(args)} > /dev/null; true"]


def measure_cold(root: Path) -> dict[str, float]:
    """Each command once with an empty metadata cache: wall seconds by command."""
    env = _env(root)
    found: dict[str, float] = {}
    for name, args in COMMANDS.items():
        state = root / f"state-{name.split()[0]}"
        shutil.rmtree(state, ignore_errors=True)
        env["LIFEBOAT_STATE_DIR"] = str(state)
        found[name] = round(run_measured("lifeboat", name, _argv(args), env=env).wall_s, 3)
    return found


def floor(base: Path, runs: int) -> float:
    """The median wall time of ``snapshots`` on an empty repository (the same configuration,
    the default key derivation): what every command costs before any data, on this machine."""
    root = base / "empty"
    if not (root / "repo").exists():
        root.mkdir(parents=True, exist_ok=True)
        Repository.init(LocalBackend(root / "repo"), PASSWORD)
        (root / "lifeboat.yaml").write_text(f"repositories:\n  main:\n    url: {root / 'repo'}\n")
    env = {**_env(root), "LIFEBOAT_STATE_DIR": str(root / "state")}
    argv = _argv(["snapshots"])
    return round(statistics.median(run_measured("lifeboat", "floor", argv, env=env).wall_s for _ in range(runs)), 3)


def prune(root: Path) -> Measurement:
    env = {**_env(root), "LIFEBOAT_STATE_DIR": str(root / "state-prune")}
    return run_measured("lifeboat", "prune", [sys.executable, "-m", "lifeboat", "prune"], env=env)


def measure(root: Path, runs: int) -> list[Measurement]:
    env = _env(root)
    found: list[Measurement] = []
    for name, args in COMMANDS.items():
        state = root / f"state-{name.split()[0]}"
        shutil.rmtree(state, ignore_errors=True)
        env["LIFEBOAT_STATE_DIR"] = str(state)
        argv = _argv(args)
        cold = run_measured("lifeboat", name, argv, env=env)
        warm = [run_measured("lifeboat", name, argv, env=env) for _ in range(runs)]
        cold.extra = {
            "cold_wall_s": round(cold.wall_s, 3),
            "cold_cpu_s": round(cold.cpu_s, 3),
            "warm_wall_s": [round(m.wall_s, 3) for m in warm],
            "warm_cpu_s": [round(m.cpu_s, 3) for m in warm],
            "warm_median_wall_s": round(statistics.median(m.wall_s for m in warm), 3),
            "warm_median_cpu_s": round(statistics.median(m.cpu_s for m in warm), 3),
            "peak_rss_mib": round(max(m.peak_rss_mib for m in [cold, *warm])),
        }
        found.append(cold)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000,10000", help="snapshot counts, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="warm runs per command")
    parser.add_argument(
        "--keep", type=Path, help='build in (or reuse: it was pruned, so "before prune" is after) this directory'
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not write bench/results")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="lifeboat-metadata-bench-", dir="/var/tmp"))
    measurements: list[Measurement] = []
    built_all: dict[str, object] = {}
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            root = base / f"s{size}"
            if (root / "repo").exists():
                built = json.loads((root / "built.json").read_text())
            else:
                root.mkdir(parents=True, exist_ok=True)
                built = build(root, size, size * WAL_PER_SNAPSHOT)
                (root / "built.json").write_text(json.dumps(built))
            built_all[str(size)] = built
            unpruned = measure_cold(root)
            pruned = prune(root)
            built["prune_wall_s"] = round(pruned.wall_s, 2)
            built["prune_peak_rss_mib"] = round(pruned.peak_rss_mib)
            for m in measure(root, args.runs):
                m.extra["cold_unpruned_wall_s"] = unpruned[m.scenario]
                m.scenario = f"{size} snapshots, {size * WAL_PER_SNAPSHOT} WAL: {m.scenario}"
                m.extra["snapshots"] = size
                measurements.append(m)
        empty = floor(base, max(3, args.runs))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    context = {
        "built": built_all,
        "empty_repository_snapshots_s": empty,
        "machine": machine(),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }
    rows = "\n".join(
        f"| {m.extra['snapshots']} | {m.scenario.split(': ', 1)[1]} | {m.extra['cold_unpruned_wall_s']:.2f} | "
        f"{m.extra['cold_wall_s']:.2f} | {m.extra['warm_median_wall_s']:.2f} | {m.extra['warm_median_cpu_s']:.2f} | "
        f"{m.extra['peak_rss_mib']} |"
        for m in measurements
    )
    prunes = "; ".join(
        f"{size} snapshots {b['prune_wall_s']} s ({b['prune_peak_rss_mib']} MiB)" for size, b in built_all.items()
    )
    table = (
        "# Metadata commands as the repository grows\n\n"
        f"Local repository, WAL objects = {WAL_PER_SNAPSHOT} × snapshots. Machine: {context['machine']}; "
        f"load average {context['load_average_1m']}. Cold: an empty metadata cache (a host's first run), "
        "as the backups left the repository (one index file and one object per snapshot) and after "
        f"`lifeboat prune` (index files rewritten into one, the snapshots in one bundle; prune took {prunes}). "
        f"Warm: median of {args.runs} runs after prune with the metadata cache filled by the cold run. "
        f"The floor on this machine: `snapshots` of an empty repository takes {empty:.2f} s.\n\n"
        "| snapshots | command | cold wall s, before prune | cold wall s | warm wall s | warm CPU s | peak RSS MiB |\n"
        "|---|---|---|---|---|---|---|\n"
        f"{rows}\n\n"
        "Each time is the whole process: interpreter start, imports, the key derivation (argon2id, the default\n"
        "cost: 19 MiB, 4 passes, about 0.05 s), the listings and the command. Target: under 1 s at 10,000 snapshots.\n"
    )
    if args.no_write:
        print(table)
    else:
        print(write_results("metadata", measurements, context, table))
        print(table)


if __name__ == "__main__":
    main()
