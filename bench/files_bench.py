"""Files benchmark: Lifeboat beside restic and Borg on the same ~2 GiB mixed tree, in one run.

Scenarios, each from a cold page cache: first backup; second backup after ~1 % of the tree
changed; restore of the second snapshot. For every tool: wall time, CPU time (user+sys, so
CPU/wall shows how many cores worked), peak RSS and repository bytes. Results go to
bench/results/files-<date>.md and .json.

    python bench/files_bench.py [--scale 1.0] [--keep]

Needs root (cold caches, the PostgreSQL part of the data) and the Debian packages restic and
borgbackup (``make bench`` installs them).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Measurement, dir_bytes, drop_caches, machine, require, run_measured, version_of, write_results
from datasets import build_mixed_tree, mutate

HERE = Path(__file__).resolve().parent
PASSWORD = "benchmark-passphrase"


class Tool:
    name = ""

    def __init__(self, work: Path) -> None:
        self.repo = work / f"repo-{self.name}"
        if self.repo.exists():
            shutil.rmtree(self.repo)

    def init(self) -> list[str]:
        raise NotImplementedError

    def backup(self, data: Path, label: str) -> list[str]:
        raise NotImplementedError

    def restore(self, target: Path, data: Path) -> list[str]:
        raise NotImplementedError

    env: dict[str, str]


class Lifeboat(Tool):
    name = "lifeboat"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.env = {"LIFEBOAT_REPO": str(self.repo), "LIFEBOAT_PASSWORD": PASSWORD}
        self.exe = [sys.executable, "-m", "lifeboat"]

    def init(self) -> list[str]:
        return [*self.exe, "init"]

    def backup(self, data: Path, label: str) -> list[str]:
        return [*self.exe, "-q", "backup", str(data), "--tag", label]

    def restore(self, target: Path, data: Path) -> list[str]:
        return [*self.exe, "-q", "restore", f"latest:{data}", "--target", str(target)]


class Restic(Tool):
    name = "restic"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.env = {
            "RESTIC_REPOSITORY": str(self.repo),
            "RESTIC_PASSWORD": PASSWORD,
            "RESTIC_CACHE_DIR": str(work / "restic-cache"),
        }

    def init(self) -> list[str]:
        return ["restic", "init", "--repository-version", "2"]

    def backup(self, data: Path, label: str) -> list[str]:
        return ["restic", "backup", "--quiet", "--tag", label, str(data)]

    def restore(self, target: Path, data: Path) -> list[str]:
        return ["restic", "restore", "latest", "--quiet", "--target", str(target), "--include", str(data)]


class Borg(Tool):
    name = "borg"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.env = {"BORG_PASSPHRASE": PASSWORD, "BORG_BASE_DIR": str(work / "borg-base")}

    def init(self) -> list[str]:
        return ["borg", "init", "--encryption", "repokey-blake2", str(self.repo)]

    def backup(self, data: Path, label: str) -> list[str]:
        return ["borg", "create", "--compression", "zstd,3", f"{self.repo}::{label}", str(data)]

    def restore(self, target: Path, data: Path) -> list[str]:
        target.mkdir(parents=True, exist_ok=True)
        return ["borg", "extract", f"{self.repo}::second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 builds ~2 GiB")
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--tools", default="lifeboat,restic,borg")
    args = parser.parse_args()
    require("restic", "restic")
    require("borg", "borgbackup")
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    pristine = work / f"pristine-{args.scale}"
    if not pristine.exists():
        print(f"building the data set (scale {args.scale}) in {pristine}", flush=True)
        build_mixed_tree(pristine, scale=args.scale)
    data = work / "data"
    if data.exists():
        shutil.rmtree(data)
    shutil.copytree(pristine, data, symlinks=True)
    size = dir_bytes(data)
    tools: list[Tool] = [{"lifeboat": Lifeboat, "restic": Restic, "borg": Borg}[t](work) for t in args.tools.split(",")]
    results: list[Measurement] = []
    for tool in tools:
        run_measured(tool.name, "init", tool.init(), env=tool.env)
    for tool in tools:
        drop_caches()
        m = run_measured(tool.name, "first backup", tool.backup(data, "first"), env=tool.env)
        m.repo_bytes = dir_bytes(tool.repo)
        results.append(m)
        print(f"{tool.name:9} first  {_line(m)} repo {m.repo_bytes / 2**20:8.1f} MiB", flush=True)
    changed = mutate(data)
    for tool in tools:
        before = dir_bytes(tool.repo)
        drop_caches()
        m = run_measured(tool.name, "second backup", tool.backup(data, "second"), env=tool.env)
        m.repo_bytes = dir_bytes(tool.repo) - before
        results.append(m)
        print(f"{tool.name:9} second {_line(m)} added {m.repo_bytes / 2**20:8.1f} MiB", flush=True)
    for tool in tools:
        target = work / f"restore-{tool.name}"
        if target.exists():
            shutil.rmtree(target)
        drop_caches()
        m = run_measured(
            tool.name, "restore", tool.restore(target, data), env=tool.env, cwd=target if tool.name == "borg" else None
        )
        results.append(m)
        print(f"{tool.name:9} restore {_line(m)}", flush=True)
        shutil.rmtree(target)
    context = {
        "machine": machine(),
        "data_bytes": size,
        "changed_bytes": changed,
        "scale": args.scale,
        "versions": {
            "lifeboat": version_of([sys.executable, "-m", "lifeboat", "--version"]),
            "restic": version_of(["restic", "version"]),
            "borg": version_of(["borg", "--version"]),
        },
        "settings": {
            "lifeboat": "defaults (zstd 3, FastCDC 256K/512K/2M, 32 MiB packs, AES-256-GCM)",
            "restic": "repository v2, default compression (auto)",
            "borg": "repokey-blake2, --compression zstd,3",
        },
    }
    path = write_results("files", results, context, render(results, context))
    print(f"results: {path}")


def _line(m: Measurement) -> str:
    return f"{m.wall_s:7.2f}s cpu {m.cpu_s:7.2f}s rss {m.peak_rss_mib:6.0f} MiB"


def render(results: list[Measurement], context: dict[str, object]) -> str:
    mach = context["machine"]
    assert isinstance(mach, dict)
    lines = [
        "# Files benchmark",
        "",
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['memory_gib']} GiB, kernel {mach['kernel']}; "
        f"date {mach['date']}.",
        f"Data: {int(context['data_bytes']) / 2**30:.2f} GiB mixed tree (source code, logs, incompressible media, "  # type: ignore[call-overload]
        f"a pgbench PostgreSQL data directory); second backup after {int(context['changed_bytes']) / 2**20:.0f} MiB "  # type: ignore[call-overload]
        "changed (~1 %). Every run starts from a cold page cache. One run, same machine.",
        "",
        f"Versions: {context['versions']}. Settings: {context['settings']}.",
        "",
        "| scenario | tool | wall s | CPU s | cores busy | peak RSS MiB | repository MiB (added) | wall vs Lifeboat |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario in ("first backup", "second backup", "restore"):
        rows = [m for m in results if m.scenario == scenario]
        base = next((m.wall_s for m in rows if m.tool == "lifeboat"), None)
        for m in rows:
            ratio = f"{m.wall_s / base:.2f}×" if base else ""
            repo = f"{m.repo_bytes / 2**20:.1f}" if m.scenario != "restore" else ""
            lines.append(
                f"| {scenario} | {m.tool} | {m.wall_s:.2f} | {m.cpu_s:.2f} | {m.cores_busy:.2f} | "
                f"{m.peak_rss_mib:.0f} | {repo} | {ratio} |"
            )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
