"""Shared measuring tools for the benchmarks: run a command, record wall time, CPU time and
peak memory of the whole process tree, drop caches, size directories, describe the machine."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
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
