"""A real MariaDB server for the tests, started once per session (per xdist worker).

``mariadb-install-db`` and ``mariadbd`` run as the unprivileged ``srvtest`` user in a short
temporary directory under /tmp (a socket path must fit in 107 bytes), always with
``--no-defaults`` first so the host's /etc/mysql cannot change them. The binary log is on
(so backups record a position); root has a password (mariabackup refuses a server without
grant tables). Readiness is ``mariadb-admin ping``, which answers even without credentials.
A missing program fails the test with the set-up hint, never skips it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.process import SETUP_HINT, free_port

PASSWORD = "s3cret-Pw#1"
SERVER_USER = "srvtest"


def program(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        pytest.fail(f"MariaDB program {name!r} is not installed; {SETUP_HINT}", pytrace=False)
    return found


def _server_env(home: str) -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home}


@dataclass
class MariadbServer:
    """One running mariadbd: reach it by TCP (``port``) or ``socket``, as root with ``password``."""

    directory: Path
    datadir: Path
    port: int
    socket: str
    password: str = PASSWORD
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.directory / f"server-{self.port}.err"

    @property
    def client_options(self) -> Path:
        """A 0600 option file for the tests' own client calls (never a password in argv)."""
        path = self.directory / f"client-{self.port}.cnf"
        if not path.exists():
            path.write_text(
                f'[client]\nhost=127.0.0.1\nprotocol=TCP\nport={self.port}\nuser=root\npassword="{self.password}"\n'
            )
            path.chmod(0o600)
        return path

    def sql(self, statement: str, database: str | None = None) -> str:
        """Run SQL as root; its output (tab-separated, no column names)."""
        argv = [program("mariadb"), f"--defaults-extra-file={self.client_options}", "--batch", "--skip-column-names"]
        if database:
            argv.append(f"--database={database}")
        done = subprocess.run([*argv, "-e", statement], capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise AssertionError(f"mariadb failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()

    def rows(self, query: str) -> list[tuple[str, ...]]:
        return [tuple(line.split("\t")) for line in self.sql(query).splitlines()]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


def new_directory(prefix: str = "mdb.") -> Path:
    """A short temporary directory owned by srvtest (pytest's tmp_path is 0700 root's)."""
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    shutil.chown(directory, SERVER_USER, SERVER_USER)
    return directory


def start_server(directory: Path, datadir: Path, *, binlog: bool = True, timeout: float = 60) -> MariadbServer:
    """Start mariadbd as srvtest on ``datadir`` (already initialised) and wait until it answers."""
    port = free_port()
    server = MariadbServer(directory=directory, datadir=datadir, port=port, socket=str(directory / f"{port}.sock"))
    argv = [
        program("mariadbd"),
        "--no-defaults",
        f"--datadir={datadir}",
        f"--socket={server.socket}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--pid-file={directory / f'{port}.pid'}",
        f"--log-error={server.log}",
        f"--tmpdir={private_tmpdir(directory)}",
        *(["--log-bin=binlog", "--server-id=1"] if binlog else ["--skip-log-bin"]),
    ]
    server.process = subprocess.Popen(
        argv,
        user=SERVER_USER,
        group=SERVER_USER,
        extra_groups=[],
        cwd=directory,
        env=_server_env(str(directory)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ping = [program("mariadb-admin"), "--no-defaults", "--protocol=TCP", "-h127.0.0.1", f"-P{port}", "-uroot", "ping"]
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            log = server.log.read_text(errors="replace")[-3000:] if server.log.exists() else ""
            pytest.fail(f"mariadbd exited with status {server.process.returncode}:\n{log}", pytrace=False)
        if subprocess.run(ping, capture_output=True, check=False).returncode == 0:
            return server
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"mariadbd did not answer within {timeout:.0f}s (log: {server.log})", pytrace=False)
        time.sleep(0.05)


def private_tmpdir(directory: Path) -> Path:
    """The server's own temporary directory: two servers bootstrapping at once in /tmp (two
    test workers) removed each other's temporary tables ('Unknown table mysql.tmp_proxies_priv')."""
    tmp = directory / "tmp"
    tmp.mkdir(exist_ok=True)
    shutil.chown(tmp, SERVER_USER, SERVER_USER)
    return tmp


def install_datadir(directory: Path) -> Path:
    datadir = directory / "data"
    done = subprocess.run(
        [
            program("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            f"--tmpdir={private_tmpdir(directory)}",
        ],
        user=SERVER_USER,
        group=SERVER_USER,
        extra_groups=[],
        cwd=directory,
        env=_server_env(str(directory)),
        capture_output=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"mariadb-install-db failed: {done.stderr.decode(errors='replace')[-2000:]}", pytrace=False)
    return datadir


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariadbServer]:
    """A MariaDB server with its binary log on and a root password (``PASSWORD``)."""
    directory = new_directory()
    server = start_server(directory, install_datadir(directory))
    try:
        ping = subprocess.run(
            [
                program("mariadb"),
                "--no-defaults",
                "--protocol=TCP",
                "-h127.0.0.1",
                f"-P{server.port}",
                "-uroot",
                "-e",
                f"ALTER USER root@localhost IDENTIFIED BY '{PASSWORD}'; "
                f"ALTER USER root@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; "
                f"ALTER USER root@'::1' IDENTIFIED BY '{PASSWORD}';",
            ],
            capture_output=True,
            check=False,
        )
        assert ping.returncode == 0, ping.stderr
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.datadir, ignore_errors=True)  # the logs stay in the directory
