"""The benchmark data: a mixed tree of source code, text, already-compressed media and a
PostgreSQL data directory, built deterministically from a seed, and a mutation that
changes about 1 % of it the way a day of use does."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

MiB = 1024 * 1024
STDLIB = Path("/usr/lib/python3.11")


def _words(rng: random.Random) -> list[bytes]:
    """Tokens of real source code (the Python standard library), or a fallback vocabulary."""
    tokens: set[bytes] = set()
    if STDLIB.is_dir():
        for path in sorted(STDLIB.glob("*.py"))[:200]:
            tokens.update(path.read_bytes().split()[:2000])
    if not tokens:
        tokens = {
            bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(2, 12))) for _ in range(5000)
        }
    return sorted(tokens)


def _source_file(rng: random.Random, words: list[bytes], size: int) -> bytes:
    out = bytearray()
    indent = 0
    while len(out) < size:
        line = b" ".join(rng.choice(words) for _ in range(rng.randint(1, 9)))
        out += b"    " * indent + line + b"\n"
        indent = max(0, min(4, indent + rng.choice((-1, 0, 0, 1))))
    return bytes(out[:size])


def _log_file(rng: random.Random, size: int, start: float) -> bytes:
    levels = (b"INFO", b"INFO", b"INFO", b"DEBUG", b"WARN", b"ERROR")
    paths = (b"/api/orders", b"/api/users", b"/static/app.js", b"/login", b"/api/search?q=")
    out = bytearray()
    t = start
    while len(out) < size:
        t += rng.expovariate(50)
        out += b"%s %s req=%08x %s %s %d %dms user=%d\n" % (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)).encode(),
            rng.choice(levels),
            rng.getrandbits(32),
            rng.choice((b"GET", b"GET", b"POST")),
            rng.choice(paths),
            rng.choice((200, 200, 200, 201, 304, 404, 500)),
            int(rng.expovariate(0.02)),
            rng.randint(1, 50000),
        )
    return bytes(out[:size])


def build_code_text_media(root: Path, *, scale: float, seed: int = 2026) -> None:
    """Source code (~15 % of the tree), logs and CSV text (~30 %), media (~30 %)."""
    rng = random.Random(seed)
    words = _words(rng)
    if STDLIB.is_dir():
        shutil.copytree(
            STDLIB, root / "code" / "python3.11", symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    code_budget = int(300 * MiB * scale)
    n = 0
    while code_budget > 0:
        size = min(code_budget, int(rng.lognormvariate(9, 1.2)) + 200)
        folder = root / "code" / "app" / f"pkg{n // 50:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"module{n:05d}.py").write_bytes(_source_file(rng, words, size))
        code_budget -= size
        n += 1
    text_budget = int(600 * MiB * scale)
    day = 1_790_000_000.0
    i = 0
    while text_budget > 0:
        size = min(text_budget, rng.randint(4 * MiB, 40 * MiB))
        (root / "logs").mkdir(exist_ok=True)
        (root / "logs" / f"access-{i:03d}.log").write_bytes(_log_file(rng, size, day + i * 86400))
        text_budget -= size
        i += 1
    media_budget = int(600 * MiB * scale)
    i = 0
    while media_budget > 0:
        size = min(media_budget, rng.randint(1 * MiB, 24 * MiB))
        folder = root / "media" / f"album{i // 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"IMG_{i:04d}.jpg").write_bytes(rng.randbytes(size))
        media_budget -= size
        i += 1


def _as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


def build_pgdata(target: Path, *, scale: float) -> None:
    """A stopped PostgreSQL 15 data directory holding ``pgbench -i -s 40×scale`` data."""
    bindir = Path("/usr/lib/postgresql/15/bin")
    work = Path(tempfile.mkdtemp(prefix="lifeboat-bench-pg-"))
    os.chmod(work, 0o777)
    data = work / "data"
    port = 55000 + os.getpid() % 1000
    subprocess.run(
        _as_postgres(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _as_postgres(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            f"-p {port} -k {work} -c listen_addresses=''",
            "-l",
            str(work / "log"),
            "-w",
            "start",
        ),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            _as_postgres(
                str(bindir / "pgbench"),
                "-h",
                str(work),
                "-p",
                str(port),
                "-U",
                "postgres",
                "-i",
                "-q",
                "-s",
                str(max(1, int(40 * scale))),
                "postgres",
            ),
            check=True,
            capture_output=True,
        )
    finally:
        subprocess.run(
            _as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"),
            check=True,
            capture_output=True,
        )
    shutil.copytree(data, target, symlinks=True)
    shutil.rmtree(work)


def build_mixed_tree(root: Path, *, scale: float = 1.0, seed: int = 2026) -> None:
    root.mkdir(parents=True)
    build_code_text_media(root, scale=scale, seed=seed)
    build_pgdata(root / "pgdata", scale=scale)


def mutate(root: Path, *, fraction: float = 0.01, seed: int = 7) -> int:
    """Change about ``fraction`` of the tree's bytes like a day of use; returns bytes changed."""
    rng = random.Random(seed)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    total = sum(p.stat().st_size for p in files)
    budget = int(total * fraction)
    changed = 0
    # PostgreSQL pages rewritten in place, scattered over the relation files.
    relations = [p for p in files if "pgdata/base" in str(p) and p.stat().st_size >= 8192]
    for _ in range(budget // 3 // 8192):
        rel = rng.choice(relations)
        page = rng.randrange(rel.stat().st_size // 8192)
        with open(rel, "r+b") as f:
            f.seek(page * 8192 + 24)
            f.write(rng.randbytes(8192 - 24))
        changed += 8192
    # Logs grow.
    logs = [p for p in files if p.suffix == ".log"]
    for log in rng.sample(logs, min(len(logs), 3)):
        grow = budget // 3 // 3
        with open(log, "ab") as f:
            f.write(_log_file(rng, grow, 1_800_000_000.0))
        changed += grow
    # A few photos added, a few source files edited.
    media = root / "media" / "new"
    media.mkdir(exist_ok=True)
    added = 0
    i = 0
    while added < budget // 3:
        size = min(budget // 3 - added, 4 * MiB) or 1
        (media / f"NEW_{seed}_{i:03d}.jpg").write_bytes(rng.randbytes(size))
        added += size
        i += 1
    changed += added
    sources = [p for p in files if p.suffix == ".py"]
    for path in rng.sample(sources, min(len(sources), 50)):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] + b"\n# edited\n" + data[len(data) // 2 :])
    return changed
