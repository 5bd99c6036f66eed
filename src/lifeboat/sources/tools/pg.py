"""Typed wrappers around PostgreSQL's programs: pg_basebackup, pg_ctl, pg_controldata.

Binaries are looked up on PATH and in Debian's ``/usr/lib/postgresql/<major>/bin``
(preferring the server's major version). When Lifeboat runs as root, server programs
run as the data directory's owner through ``runuser`` (pg_ctl refuses to run as root).
Failures become :class:`PostgresError` / :class:`MissingTool` with the tool's last words.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lifeboat.errors import MissingTool, PostgresError

DEBIAN_ROOT = Path("/usr/lib/postgresql")


def find_program(name: str, major: str | None = None) -> str:
    """The path of a PostgreSQL program, matching ``major`` when several are installed."""
    candidates: list[Path] = []
    if major:
        candidates.append(DEBIAN_ROOT / major / "bin" / name)
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    if DEBIAN_ROOT.is_dir():
        versions = sorted(
            (p for p in DEBIAN_ROOT.iterdir() if p.name.isdigit()), key=lambda p: int(p.name), reverse=True
        )
        candidates.extend(v / "bin" / name for v in versions)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise MissingTool(
        f"{name} was not found on PATH or in {DEBIAN_ROOT}/*/bin",
        hint="install the PostgreSQL client/server packages (Debian: postgresql-15, postgresql-client-15)",
    )


def owner_of(path: str | os.PathLike[str]) -> str:
    """The user name owning ``path``."""
    uid = os.stat(path).st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def as_user(user: str | None) -> list[str]:
    """The argv prefix that runs a program as ``user`` (only needed when we are root)."""
    if user is None or os.geteuid() != 0 or user == "root":
        return []
    return [find_runuser(), "-u", user, "--"]


def find_runuser() -> str:
    found = shutil.which("runuser") or ("/usr/sbin/runuser" if os.path.exists("/usr/sbin/runuser") else None)
    if not found:
        raise MissingTool("runuser was not found", hint="install util-linux")
    return found


def _tail(text: bytes | str, lines: int = 5) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


@dataclass(frozen=True)
class Connection:
    """How command-line tools reach the server (unset fields fall back to libpq's PG* variables)."""

    host: str | None = None
    port: int | None = None
    user: str | None = None
    dbname: str | None = None

    def argv(self) -> list[str]:
        args: list[str] = []
        if self.host:
            args += ["-h", self.host]
        if self.port:
            args += ["-p", str(self.port)]
        if self.user:
            args += ["-U", self.user]
        return args


class PgBasebackup:
    """``pg_basebackup`` streaming one tar archive to standard output."""

    def __init__(self, major: str | None = None) -> None:
        self.program = find_program("pg_basebackup", major)
        self.log = ""  # pg_basebackup's messages (stderr) of the last run

    def argv(self, connection: Connection, label: str, *, fast: bool = True) -> list[str]:
        return [
            self.program,
            *connection.argv(),
            "-D",
            "-",
            "-Ft",
            "-X",
            "fetch",
            "-c",
            "fast" if fast else "spread",
            "-l",
            label,
            "-w",
            "-v",
        ]

    @contextlib.contextmanager
    def stream(self, connection: Connection, label: str, *, fast: bool = True) -> Iterator[IO[bytes]]:
        """Yield the tar stream; raises :class:`PostgresError` if pg_basebackup fails."""
        process = subprocess.Popen(
            self.argv(connection, label, fast=fast),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PGAPPNAME": "lifeboat backup"},
        )
        assert process.stdout is not None and process.stderr is not None
        errors: list[bytes] = []
        reader = threading.Thread(target=lambda: errors.append(process.stderr.read() if process.stderr else b""))
        reader.start()
        ok = False
        try:
            yield process.stdout
            ok = True
        finally:
            if not ok and process.poll() is None:
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(OSError):
                process.stdout.read()  # drain so the process can exit
            code = process.wait()
            reader.join()
            process.stdout.close()
            process.stderr.close()
        self.log = b"".join(errors).decode(errors="replace")
        if code != 0:
            raise PostgresError(f"pg_basebackup failed (exit status {code}): {_tail(self.log)}")


class PgCtl:
    """``pg_ctl``: start and stop a cluster, as the data directory's owner."""

    def __init__(self, major: str | None = None) -> None:
        self.program = find_program("pg_ctl", major)

    def _run(self, args: Sequence[str], data_dir: str, *, timeout: float) -> subprocess.CompletedProcess[bytes]:
        argv = [*as_user(owner_of(data_dir)), self.program, "-D", data_dir, *args]
        try:
            return subprocess.run(argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise PostgresError(f"pg_ctl {args[-1]} did not finish within {timeout:.0f}s") from None

    def start(
        self, data_dir: str, *, log_file: str, port: int | None = None, wait: bool = True, timeout: float = 600
    ) -> None:
        options = ["-l", log_file]
        if port:
            options += ["-o", f"-p {port}"]
        if wait:
            options += ["-w", "-t", str(int(timeout))]
        else:
            options += ["-W"]
        done = self._run([*options, "start"], data_dir, timeout=timeout + 30)
        if done.returncode != 0:
            raise PostgresError(
                f"pg_ctl could not start the cluster in {data_dir}: {_tail(done.stderr + done.stdout)}",
                hint=f"see {log_file}",
            )

    def stop(self, data_dir: str, *, mode: str = "fast", timeout: float = 120) -> None:
        done = self._run(["-m", mode, "-w", "-t", str(int(timeout)), "stop"], data_dir, timeout=timeout + 30)
        if done.returncode != 0:
            raise PostgresError(f"pg_ctl could not stop the cluster in {data_dir}: {_tail(done.stderr)}")

    def running(self, data_dir: str) -> bool:
        return self._run(["status"], data_dir, timeout=30).returncode == 0


class PgControlData:
    """``pg_controldata``: the control file as ``key: value`` pairs."""

    def __init__(self, major: str | None = None) -> None:
        self.program = find_program("pg_controldata", major)

    def read(self, data_dir: str) -> dict[str, str]:
        done = subprocess.run(
            [self.program, "-D", data_dir],
            capture_output=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "LC_ALL": "C"},
        )
        if done.returncode != 0:
            raise PostgresError(f"pg_controldata failed on {data_dir}: {_tail(done.stderr)}")
        values: dict[str, str] = {}
        for line in done.stdout.decode(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                values[key.strip()] = value.strip()
        return values
