"""A throwaway PostgreSQL cluster (initdb, configure, start, stop, psql) for the demo,
the tests and the benchmarks.

When run as root, the cluster belongs to an unprivileged OS user (``postgres`` by
default) and its programs run through ``runuser``: PostgreSQL refuses to run as root.
It listens on 127.0.0.1 and a private socket directory, on the port it is given.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lifeboat.errors import PostgresError
from lifeboat.sources.tools.pg import Connection, as_user, find_program


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def default_os_user() -> str:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    return "postgres"


def chown_tree(path: str | os.PathLike[str], user: str) -> None:
    """Give ``path`` (and everything below) to ``user`` (only when root)."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


class ScratchCluster:
    """A cluster in ``base/data`` with its socket in ``base/run`` and its log in ``base/log/server.log``."""

    def __init__(
        self,
        base: str | os.PathLike[str],
        *,
        port: int | None = None,
        os_user: str | None = None,
        major: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.base = Path(base)
        self.data_dir = Path(data_dir) if data_dir else self.base / "data"
        self.socket_dir = self.base / "run"
        self.log = self.base / "log" / "server.log"
        self.port = port or free_port()
        self.os_user = os_user or default_os_user()
        self.major = major
        self.db_user = "postgres"

    # --- programs -----------------------------------------------------------------------------
    def _server(self, program: str, *args: str, check: bool = True, timeout: float = 300) -> str:
        argv = [*as_user(self.os_user), find_program(program, self.major), *args]
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise PostgresError(f"{program} failed: {done.stderr.decode(errors='replace').strip()[-2000:]}")
        return done.stdout.decode(errors="replace")

    def connection(self, dbname: str = "postgres") -> Connection:
        return Connection(host=str(self.socket_dir), port=self.port, user=self.db_user, dbname=dbname)

    def env(self) -> dict[str, str]:
        """libpq variables that reach this cluster."""
        return {"PGHOST": str(self.socket_dir), "PGPORT": str(self.port), "PGUSER": self.db_user}

    # --- life cycle ---------------------------------------------------------------------------
    def init(
        self, *, checksums: bool = True, settings: Mapping[str, str] | None = None, wal_segment_mb: int | None = None
    ) -> ScratchCluster:
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)  # noqa: S103 - the server's OS user must reach its directories
        for directory in (self.socket_dir, self.log.parent):
            directory.mkdir(exist_ok=True)
            chown_tree(directory, self.os_user)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.data_dir.parent != self.base:
            chown_tree(self.data_dir.parent, self.os_user)
        args = ["-D", str(self.data_dir), "-U", self.db_user, "-A", "trust", "--no-sync", "-E", "UTF8"]
        args += ["--locale=C.UTF-8"] + (["--data-checksums"] if checksums else [])
        args += [f"--wal-segsize={wal_segment_mb}"] if wal_segment_mb else []
        if os.geteuid() == 0:
            self.data_dir.mkdir(mode=0o700, exist_ok=True)
            chown_tree(self.data_dir, self.os_user)
        self._server("initdb", *args)
        self.configure(
            {
                "listen_addresses": "127.0.0.1",
                "port": str(self.port),
                "unix_socket_directories": str(self.socket_dir),
                "wal_level": "replica",
                "max_wal_senders": "10",
                "fsync": "off",
                "full_page_writes": "on",
                "shared_buffers": "32MB",
                "logging_collector": "off",
                **(settings or {}),
            }
        )
        with open(self.data_dir / "pg_hba.conf", "a", encoding="utf-8") as hba:
            hba.write("\nhost replication all 127.0.0.1/32 trust\nlocal replication all trust\n")
        return self

    def configure(self, settings: Mapping[str, str]) -> None:
        """Append settings to postgresql.conf (the last value wins)."""
        from lifeboat.sources.postgres.recoveryconf import quote

        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = {quote(value)}\n")

    def start(self, *, timeout: float = 120) -> None:
        self._server(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log), "-w", "-t", str(int(timeout)), "start",
            timeout=timeout + 30,
        )  # fmt: skip

    def stop(self, mode: str = "fast", *, check: bool = True) -> None:
        self._server("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "120", "stop", check=check)

    def running(self) -> bool:
        argv = [*as_user(self.os_user), find_program("pg_ctl", self.major), "-D", str(self.data_dir), "status"]
        return subprocess.run(argv, capture_output=True, timeout=60, check=False).returncode == 0

    def destroy(self) -> None:
        if self.data_dir.exists() and self.running():
            self.stop("immediate", check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    # --- SQL ------------------------------------------------------------------------------------
    def psql(self, sql: str, *, dbname: str = "postgres", check: bool = True) -> str:
        """Run SQL with psql; returns the unaligned, tuples-only output."""
        argv = [
            find_program("psql", self.major),
            "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.db_user, "-d", dbname,
            "-c", sql,
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, timeout=300, check=False, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise PostgresError(f"psql failed: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode(errors="replace").strip()

    def client(self, program: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[bytes]:
        """Run a client program (pgbench, pg_amcheck, …) against this cluster."""
        argv = [find_program(program, self.major), "-h", str(self.socket_dir), "-p", str(self.port), *args]
        return subprocess.run(
            argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
            env={**os.environ, "PGUSER": self.db_user},
        )  # fmt: skip

    def background(self, program: str, *args: str) -> subprocess.Popen[bytes]:
        argv = [find_program(program, self.major), "-h", str(self.socket_dir), "-p", str(self.port), *args]
        return subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env={**os.environ, "PGUSER": self.db_user},
        )  # fmt: skip


def run_lifeboat(
    argv: Sequence[str], env: Mapping[str, str], *, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run this Lifeboat's command line in a child process (the demo and benchmarks use it)."""
    import sys

    return subprocess.run(
        [sys.executable, "-m", "lifeboat", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env},
    )


def _can_run(os_user: str, argv: list[str], env: Mapping[str, str] | None = None) -> bool:
    probe = [*as_user(os_user), "env", *(f"{k}={v}" for k, v in (env or {}).items()), *argv]
    probe += ["-c", "import lifeboat, zstandard, blake3, argon2"]
    return subprocess.run(probe, capture_output=True, timeout=60, check=False).returncode == 0


def _mirror(paths: Sequence[str], into: Path) -> list[str]:
    """Hard-linked copies of ``paths`` below ``into`` (copies across file systems)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    mirrored = []
    for i, path in enumerate(paths):
        target = into / str(i)
        if not target.exists():
            shutil.copytree(path, target, symlinks=True, copy_function=link)
        mirrored.append(str(target))
    chown_tree(into, "root")
    for root, dirs, files in os.walk(into):
        os.chmod(root, 0o755)  # noqa: S103 - the server's OS user must read this installation
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)
        del dirs
    return mirrored


def server_lifeboat_command(os_user: str, *, mirror: Path | None = None) -> str | None:
    """A ``LIFEBOAT_SERVER_COMMAND`` for servers running as ``os_user``, or None if not needed.

    When this interpreter or installation lives where ``os_user`` cannot reach it (below
    /root), the server runs the system ``python3`` of the same version with this
    installation's packages on its path — or, if those cannot be read either, with a
    hard-linked copy of them below ``mirror``.
    """
    import sys

    import lifeboat

    if os.geteuid() != 0 or os_user == "root":
        return None
    if _can_run(os_user, [sys.executable]):
        return None
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/bin:/usr/local/bin") or shutil.which("python3", path="/usr/bin")
    if system is None:
        return None
    package_root = str(Path(lifeboat.__file__).resolve().parent.parent)
    site = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]
    paths = [package_root, *site]
    if not _can_run(os_user, [system], {"PYTHONPATH": ":".join(paths)}) and mirror is not None:
        paths = _mirror(paths, mirror)
    # -S: no site scan, 20 ms less; -c START_CODE: no runpy, 5 ms less for each WAL file
    return f"env PYTHONPATH={':'.join(paths)} {system} -S -c {shlex.quote(lifeboat.START_CODE)}"
