"""A redis-server on a restored directory: telling whether one already runs there, and
starting one (for a drill, or to check a restore) until it answers PING.

A running Redis server works in its ``dir``: that is its working directory, which
``/proc/PID/cwd`` shows. A restore must not write under a running server — it neither loads
the file nor keeps it (its next save overwrites it).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lifeboat.errors import SourceError
from lifeboat.sources.tools.redis import find

READY_TIMEOUT_SECONDS = 120.0
LOG_NAME = "lifeboat-redis.log"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (a small race remains until it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def servers_in(directory: str, pid_file: str | None = None) -> list[int]:
    """The PIDs of redis-server processes working in ``directory`` (those this user may see),
    and the live PID in ``pid_file`` if one is given."""
    real = os.path.realpath(directory)
    found: list[int] = []
    if pid_file:
        with contextlib.suppress(OSError, ValueError):
            pid = int(Path(pid_file).read_text().strip())
            os.kill(pid, 0)
            found.append(pid)
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in found:
            continue
        try:
            if not (entry / "comm").read_text().strip().startswith("redis-server"):
                continue
            if os.readlink(entry / "cwd") == real:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@dataclass
class RedisServer:
    """A redis-server started on a directory; ``stop`` ends it (SIGTERM, then SIGKILL)."""

    pid: int
    port: int
    directory: str
    log: str
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)


def start_server(
    directory: str,
    dbfilename: str,
    port: int,
    *,
    detach: bool = False,
    timeout: float = READY_TIMEOUT_SECONDS,
) -> RedisServer:
    """Start redis-server on 127.0.0.1:``port`` loading ``directory``/``dbfilename``, as the
    directory's owner (when run as root), without persistence (no saves, no AOF), and wait
    until it answers PING. ``detach``: it outlives Lifeboat (its own session)."""
    log = os.path.join(directory, LOG_NAME)
    argv = [
        find("redis-server"),
        "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--dbfilename", dbfilename,
        "--daemonize", "no", "--save", "", "--appendonly", "no", "--logfile", log,
    ]  # fmt: skip
    owner = os.stat(directory)
    uid: int | None = None
    gid: int | None = None
    if os.geteuid() == 0 and owner.st_uid != 0:  # a server's files belong to its user: run as the directory's owner
        uid, gid = owner.st_uid, pwd.getpwuid(owner.st_uid).pw_gid
    process = subprocess.Popen(  # redis-server with our own arguments, no shell
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=directory,
        start_new_session=detach,
        env={"PATH": os.defpath},
        user=uid,
        group=gid,
        extra_groups=[] if uid is not None else None,
    )
    server = RedisServer(process.pid, port, directory, log, None if detach else process)
    deadline = time.monotonic() + timeout
    while not _answers_ping(port):
        if process.poll() is not None:
            raise SourceError(
                f"redis-server exited with status {process.returncode} while starting on port {port}: {_tail(log)}",
                hint=f"see {log}",
            )
        if time.monotonic() > deadline:
            server.process = process
            server.stop()
            raise SourceError(
                f"redis-server on port {port} did not answer PING within {timeout:.0f}s", hint=f"see {log}"
            )
        time.sleep(0.05)
    return server


def set_appendonly(port: int, *, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Turn the AOF on in a running server loaded from an RDB (``CONFIG SET appendonly yes``
    rewrites it from the dataset) and wait for the rewrite to end."""
    _cli(port, "CONFIG", "SET", "appendonly", "yes")
    deadline = time.monotonic() + timeout
    while True:
        info = _cli(port, "INFO", "persistence")
        if "aof_rewrite_in_progress:0" in info and "aof_rewrite_scheduled:0" in info and "aof_enabled:1" in info:
            return
        if time.monotonic() > deadline:
            raise SourceError(f"the AOF rewrite on port {port} did not finish within {timeout:.0f}s")
        time.sleep(0.1)


def _answers_ping(port: int) -> bool:
    try:
        return _cli(port, "PING").strip() == "PONG"
    except SourceError:
        return False


def _cli(port: int, *args: str) -> str:
    try:
        done = subprocess.run(
            [find("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *args],
            capture_output=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
            env={"PATH": os.defpath},
        )
    except subprocess.TimeoutExpired:
        raise SourceError(f"redis-cli {args[0]} on port {port} timed out") from None
    if done.returncode != 0:
        raise SourceError(f"redis-cli {args[0]} on port {port} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode(errors="replace")


def _tail(path: str) -> str:
    try:
        lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no log"
