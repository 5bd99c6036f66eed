"""Files benchmark: Lifeboat beside restic and Borg on the same ~2.6 GiB mixed tree, in one run.

Scenarios, each from a cold page cache: first backup; second backup after ~1 % of the tree
changed; restore of the second snapshot, ``--restores`` times per tool (default 3, the
tools taking turns), reported as min/median/max. For every tool: wall time, CPU time
(user+sys, so CPU/wall shows how many cores worked), peak RSS and repository bytes.

The physical limit is the reference: ``cp -a`` of the same tree, then ``sync``, from a cold
cache, timed the same number of times. A restore's time is its wall time plus a ``sync``
after it (its bytes on disk, like the copy's); each tool's median is given as a ratio of the
copy's and of the best peer's (restic, Borg). Target: Lifeboat at most 0.8× the best peer.

Lifeboat runs twice: its default repository (Argon2id with 19 MiB, a fixed cost when the
repository is opened) and one initialised with ``--kdf-memory 8MiB`` ("lifeboat-kdf"), so
the peak RSS of ``backup`` and ``restore``'s own data path shows beside the 64 MiB target.

Results go to bench/results/files-<date>.md and .json.

    python bench/files_bench.py [--scale 1.0] [--restores 3] [--kdf-memory 8MiB]
                                [--tools lifeboat,lifeboat-kdf,restic,borg]

``--scale 0.02`` checks the benchmark itself in a minute. Needs root (cold caches, the
PostgreSQL part of the data) and the Debian packages restic and borgbackup (``make bench``
installs them).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
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
    version_of,
    write_results,
)
from datasets import build_mixed_tree, mutate

HERE = Path(__file__).resolve().parent
PASSWORD = "benchmark-passphrase"
PEERS = ("restic", "borg")


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


class LifeboatSmallKdf(Lifeboat):
    """Lifeboat with a repository whose key derivation takes little memory: the data path's RSS."""

    name = "lifeboat-kdf"
    kdf_memory = "8MiB"

    def init(self) -> list[str]:
        return [*self.exe, "init", "--kdf-memory", self.kdf_memory]


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
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 builds ~2.6 GiB")
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--tools", default="lifeboat,lifeboat-kdf,restic,borg")
    parser.add_argument("--restores", type=int, default=3, help="cold-cache restores per tool (median reported)")
    parser.add_argument("--kdf-memory", default="8MiB", help="Argon2id memory of lifeboat-kdf's repository")
    args = parser.parse_args()
    require("restic", "restic")
    require("borg", "borgbackup")
    LifeboatSmallKdf.kdf_memory = args.kdf_memory
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
    kinds: dict[str, type[Tool]] = {
        "lifeboat": Lifeboat,
        "lifeboat-kdf": LifeboatSmallKdf,
        "restic": Restic,
        "borg": Borg,
    }
    tools: list[Tool] = [kinds[t](work) for t in args.tools.split(",")]
    results: list[Measurement] = []
    for tool in tools:
        run_measured(tool.name, "init", tool.init(), env=tool.env)
    for tool in tools:
        drop_caches()
        m = run_measured(tool.name, "first backup", tool.backup(data, "first"), env=tool.env)
        m.repo_bytes = dir_bytes(tool.repo)
        results.append(m)
        print(f"{tool.name:12} first  {_line(m)} repo {m.repo_bytes / 2**20:8.1f} MiB", flush=True)
    changed = mutate(data)
    second_size = dir_bytes(data)
    for tool in tools:
        before = dir_bytes(tool.repo)
        drop_caches()
        m = run_measured(tool.name, "second backup", tool.backup(data, "second"), env=tool.env)
        m.repo_bytes = dir_bytes(tool.repo) - before
        results.append(m)
        print(f"{tool.name:12} second {_line(m)} added {m.repo_bytes / 2**20:8.1f} MiB", flush=True)
    # Restores of the second snapshot, the tools taking turns (so that a slow spell of the
    # machine does not fall on one tool), each beside a cp -a + sync of the same tree.
    for run in range(1, args.restores + 1):
        for turn in [None, *tools]:
            name = turn.name if turn else "cp"
            target = work / f"restore-{name}"
            if target.exists():
                shutil.rmtree(target)
            if turn is None:
                m = run_restore("cp", "restore", copy_command(data, target), run=run)
            else:
                if turn.name == "borg":
                    target.mkdir(parents=True)
                m = run_restore(
                    turn.name, "restore", turn.restore(target, data), run=run, env=turn.env,
                    cwd=target if turn.name == "borg" else None,
                )  # fmt: skip
            restored = dir_bytes(target)
            m.extra["restored_bytes"] = restored
            results.append(m)
            print(f"{name:12} restore {run} {_line(m)} +sync {m.extra['sync_s']:.2f}s", flush=True)
            shutil.rmtree(target)
            if restored < second_size * 0.99:
                raise SystemExit(f"{name} restored {restored} bytes of {second_size}")
    context = {
        "machine": machine(),
        "data_bytes": size,
        "changed_bytes": changed,
        "scale": args.scale,
        "restores": args.restores,
        "kdf_memory": args.kdf_memory,
        "versions": {
            "lifeboat": version_of([sys.executable, "-m", "lifeboat", "--version"]),
            "restic": version_of(["restic", "version"]),
            "borg": version_of(["borg", "--version"]),
            "cp": version_of(["cp", "--version"]),
        },
        "settings": {
            "lifeboat": "defaults (zstd 3, FastCDC 256K/512K/2M, 32 MiB packs, AES-256-GCM, Argon2id 19 MiB)",
            "lifeboat-kdf": f"the same, repository initialised with --kdf-memory {args.kdf_memory}",
            "restic": "repository v2, default compression (auto)",
            "borg": "repokey-blake2, --compression zstd,3",
        },
    }
    context["restore"] = restore_summary(results, scenario="restore", peers=PEERS, reference="cp")
    path = write_results("files", results, context, render(results, context))
    print(f"results: {path}")


def _line(m: Measurement) -> str:
    return f"{m.wall_s:7.2f}s cpu {m.cpu_s:7.2f}s rss {m.peak_rss_mib:6.0f} MiB"


def render(results: list[Measurement], context: dict[str, object]) -> str:
    mach = context["machine"]
    assert isinstance(mach, dict)
    kdf = str(context["kdf_memory"])
    labels = {"lifeboat-kdf": f"lifeboat (KDF {kdf})", "cp": "cp -a + sync"}
    lines = [
        "# Files benchmark",
        "",
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['memory_gib']} GiB, kernel {mach['kernel']}; "
        f"date {mach['date']}.",
        f"Data: {int(context['data_bytes']) / 2**30:.2f} GiB mixed tree (source code, logs, incompressible media, "  # type: ignore[call-overload]
        f"a pgbench PostgreSQL data directory); second backup after {int(context['changed_bytes']) / 2**20:.0f} MiB "  # type: ignore[call-overload]
        f"changed (~1 %). Every run starts from a cold page cache. Backups: one run each; restores: "
        f"{context['restores']} runs each, the tools taking turns. Same machine.",
        "",
        f"Versions: {context['versions']}. Settings: {context['settings']}.",
        "",
        "## Backups",
        "",
        "| scenario | tool | wall s | CPU s | cores busy | peak RSS MiB | repository MiB (added) | wall vs Lifeboat |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario in ("first backup", "second backup"):
        rows = [m for m in results if m.scenario == scenario]
        base = next((m.wall_s for m in rows if m.tool == "lifeboat"), None)
        for m in rows:
            ratio = f"{m.wall_s / base:.2f}×" if base else ""
            lines.append(
                f"| {scenario} | {labels.get(m.tool, m.tool)} | {m.wall_s:.2f} | {m.cpu_s:.2f} | {m.cores_busy:.2f} | "
                f"{m.peak_rss_mib:.0f} | {m.repo_bytes / 2**20:.1f} | {ratio} |"
            )
    summary = context["restore"]
    assert isinstance(summary, dict)
    lines += ["", "## Restore of the second snapshot", ""]
    lines += restore_table(summary, peers=PEERS, reference="cp", labels=labels)
    lines += ["", "## Memory", ""]
    lines += memory_table(
        [
            (
                f"`backup`, {scenario}",
                peak_rss(results, "lifeboat", (scenario,)),
                peak_rss(results, "lifeboat-kdf", (scenario,)),
            )
            for scenario in ("first backup", "second backup")
        ]
        + [("`restore`", peak_rss(results, "lifeboat", ("restore",)), peak_rss(results, "lifeboat-kdf", ("restore",)))],
        kdf,
    )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
