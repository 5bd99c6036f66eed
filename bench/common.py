"""Shared measuring tools for the benchmarks: run a command, record wall time, CPU time and
peak memory of the whole process tree, drop caches, size directories, describe the machine;
repeated cold-cache restores beside the physical limit (``cp -a`` + ``sync``) and their table."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Measurement:
    tool: str
    scenario: str
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    repo_bytes: int = 0
    exit_code: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def cores_busy(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0


def drop_caches() -> None:
    """Cold-cache runs: flush dirty pages and drop the page cache (needs root)."""
    subprocess.run(["sync"], check=True)
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def run_measured(
    tool: str,
    scenario: str,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: int | None = None,
) -> Measurement:
    """Run ``argv`` to completion under GNU time: wall time, CPU time (user+sys of the whole
    process tree) and the peak RSS of its largest process.

    The peak RSS is GNU time's: a child forked straight from this (large) Python process
    would report this process's RSS as its own floor, because Linux carries the high-water
    mark of the address space replaced by exec into the child's ``ru_maxrss``.
    """
    fd, timing_path = tempfile.mkstemp(prefix="lifeboat-bench-time-", suffix=".txt")
    os.close(fd)
    started = time.monotonic()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%e %U %S %M", "-o", timing_path, *argv],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdin=stdin,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    wall = time.monotonic() - started
    fields = Path(timing_path).read_text().split()
    os.unlink(timing_path)
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace")
        raise RuntimeError(f"{tool} {scenario} failed with {proc.returncode}: {stderr[-2000:]}")
    _, user, system, max_kib = fields[-4:]
    return Measurement(tool, scenario, wall, float(user) + float(system), int(max_kib) / 1024)


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


def version_of(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise SystemExit(f"{binary} is missing: install the Debian package {package} (make bench does)")
    return path


def write_results(name: str, measurements: list[Measurement], context: dict[str, object], table: str) -> Path:
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%d")
    (out / f"{name}-{stamp}.json").write_text(
        json.dumps({"context": context, "measurements": [asdict(m) for m in measurements]}, indent=2) + "\n"
    )
    path = out / f"{name}-{stamp}.md"
    path.write_text(table)
    return path


# --- restores: cold cache, repeated, beside the disk's own copy ------------------------------------
RESTORE_TARGET = 0.8  # the target: every restore at most 0.8× the best peer's time
MEMORY_TARGET_MIB = 64


def timed_sync() -> float:
    started = time.monotonic()
    subprocess.run(["sync"], check=True)
    return time.monotonic() - started


def run_restore(
    tool: str,
    scenario: str,
    argv: list[str],
    *,
    run: int,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Measurement:
    """One restore from a cold page cache, then ``sync``: the restore counts as done when its
    bytes are on disk, as the ``cp -a`` + ``sync`` reference is (``extra``: ``run``, ``sync_s``
    and ``durable_s`` = wall + sync, the time the tables compare)."""
    drop_caches()
    m = run_measured(tool, scenario, argv, env=env, cwd=cwd)
    flushed = timed_sync()
    m.extra.update(run=run, sync_s=round(flushed, 3), durable_s=round(m.wall_s + flushed, 3))
    return m


def copy_command(source: Path, target: Path, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """``cp -a`` of what ``source`` holds (less the top-level names in ``exclude``) into
    ``target``, created here: the physical limit a restore of the same bytes is measured against."""
    target.mkdir(parents=True)
    entries = [str(p) for p in sorted(source.iterdir()) if p.name not in exclude]
    return ["cp", "-a", *entries, str(target)]


def spread(values: list[float]) -> tuple[float, float, float]:
    """(min, median, max)."""
    return min(values), statistics.median(values), max(values)


def durable(m: Measurement) -> float:
    return float(m.extra.get("durable_s", m.wall_s))  # type: ignore[arg-type]


def restore_summary(
    results: list[Measurement], *, scenario: str, peers: tuple[str, ...], reference: str | None
) -> dict[str, dict[str, float]]:
    """Per tool: runs, min/median/max of the durable time (wall + sync), median wall and sync,
    median CPU, the largest peak RSS; its median as a ratio of the reference's (``cp``) and
    of the best peer's (the lowest median among ``peers``)."""
    by_tool: dict[str, list[Measurement]] = {}
    for m in results:
        if m.scenario == scenario:
            by_tool.setdefault(m.tool, []).append(m)
    summary: dict[str, dict[str, float]] = {}
    for tool, runs in by_tool.items():
        low, mid, high = spread([durable(m) for m in runs])
        summary[tool] = {
            "runs": len(runs),
            "min_s": round(low, 3),
            "median_s": round(mid, 3),
            "max_s": round(high, 3),
            "median_wall_s": round(statistics.median(m.wall_s for m in runs), 3),
            "median_sync_s": round(statistics.median(float(m.extra.get("sync_s", 0.0)) for m in runs), 3),  # type: ignore[arg-type]
            "median_cpu_s": round(statistics.median(m.cpu_s for m in runs), 3),
            "peak_rss_mib": round(max(m.peak_rss_mib for m in runs), 1),
        }
    ref = summary.get(reference or "", {}).get("median_s")
    best = min((summary[p]["median_s"] for p in peers if p in summary), default=None)
    for row in summary.values():
        if ref:
            row["vs_reference"] = round(row["median_s"] / ref, 3)
        if best:
            row["vs_best_peer"] = round(row["median_s"] / best, 3)
    return summary


def restore_table(
    summary: dict[str, dict[str, float]],
    *,
    peers: tuple[str, ...],
    reference: str | None,
    labels: dict[str, str] | None = None,
) -> list[str]:
    """Markdown lines: one row per tool (the reference first), min/median/max of the time to
    disk, ratios to the reference and to the best peer, and the target for Lifeboat's rows."""
    labels = labels or {}
    order = sorted(summary, key=lambda t: (t != reference, t not in peers, t))
    lines = [
        f"Time = the restore's wall time + the `sync` after it (bytes on disk), median of the runs; "
        f"target: Lifeboat at most {RESTORE_TARGET}× the best peer ({', '.join(peers)}).",
        "",
        "| tool | runs | min s | median s | max s | of which sync s | CPU s | peak RSS MiB "
        f"| vs {reference or 'reference'} | vs best peer | target ≤ {RESTORE_TARGET}× best peer |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tool in order:
        row = summary[tool]
        target = ""
        if tool.startswith("lifeboat") and "vs_best_peer" in row:
            target = "met" if row["vs_best_peer"] <= RESTORE_TARGET else "missed"
        vs_ref = f"{row['vs_reference']:.2f}×" if "vs_reference" in row else ""
        vs_peer = f"{row['vs_best_peer']:.2f}×" if "vs_best_peer" in row and tool != reference else ""
        lines.append(
            f"| {labels.get(tool, tool)} | {row['runs']:.0f} | {row['min_s']:.2f} | {row['median_s']:.2f} "
            f"| {row['max_s']:.2f} | {row['median_sync_s']:.2f} | {row['median_cpu_s']:.2f} "
            f"| {row['peak_rss_mib']:.0f} | {vs_ref} | {vs_peer} | {target} |"
        )
    return lines


def memory_table(rows: list[tuple[str, float | None, float | None]], kdf_memory: str) -> list[str]:
    """Lifeboat's peak RSS per command, with the default key derivation (Argon2id 19 MiB, a
    fixed cost when the repository is opened) and with a repository made with a smaller one."""
    lines = [
        f"Lifeboat's peak RSS (largest process, GNU time; the largest over the runs), target "
        f"{MEMORY_TARGET_MIB} MiB. The default key derivation (Argon2id, 19 MiB) is a fixed cost when "
        f"the repository is opened; the right-hand columns are a repository initialised with "
        f"`--kdf-memory {kdf_memory}`, so that the data path's own memory shows.",
        "",
        f"| command | default KDF: peak RSS MiB | ≤ {MEMORY_TARGET_MIB} MiB | `--kdf-memory {kdf_memory}`: "
        f"peak RSS MiB | ≤ {MEMORY_TARGET_MIB} MiB |",
        "|---|---|---|---|---|",
    ]
    for command, default, small in rows:
        cells = []
        for value in (default, small):
            if value is None:
                cells += ["", ""]
            else:
                cells += [f"{value:.0f}", "met" if value <= MEMORY_TARGET_MIB else "missed"]
        lines.append(f"| {command} | " + " | ".join(cells) + " |")
    return lines


def peak_rss(results: list[Measurement], tool: str, scenarios: tuple[str, ...]) -> float | None:
    values = [m.peak_rss_mib for m in results if m.tool == tool and m.scenario in scenarios]
    return max(values) if values else None
