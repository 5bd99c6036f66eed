"""The sandbox ``schedule install --systemd`` writes does not break Lifeboat: under
``MemoryDenyWriteExecute=yes`` and ``SystemCallFilter=@system-service`` (the same seccomp rules,
tests/install/sandbox.py) a repository is made, backed up to, read back whole and restored from,
and every library the daemon loads imports and works (cryptography, numpy, argon2-cffi,
zstandard, blake3, FastAPI, uvicorn, Apprise, …). No systemd runs here to start the real unit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lifeboat.sources.tools.pgcluster import free_port
from tests.conftest import PASSPHRASE
from tests.postgres.conftest import WorldFactory

pytestmark = pytest.mark.slow

SANDBOX = Path(__file__).with_name("sandbox.py")


def _confined(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SANDBOX), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_the_filters_refuse_what_the_unit_forbids() -> None:
    """The emulation works: W+X memory is refused, W then X too, plain memory is not; a system
    call outside @system-service (syslog, which root may otherwise call) is refused."""
    probe = (
        "import mmap, ctypes\n"
        "mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE)\n"
        "try:\n"
        "    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "except PermissionError:\n"
        "    print('wx refused')\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "m = mmap.mmap(-1, 4096)\n"
        "address = ctypes.addressof(ctypes.c_char.from_buffer(m))\n"
        "print('x refused' if libc.mprotect(ctypes.c_void_p(address), 4096, 5) != 0 else 'x allowed')\n"
        "size = libc.klogctl(10, None, 0)\n"  # SYSLOG_ACTION_SIZE_BUFFER: a harmless question
        "print('syslog refused' if size == -1 and ctypes.get_errno() == 1 else f'syslog allowed {size}')\n"
    )
    result = _confined(sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wx", "refused", "x", "refused", "syslog", "refused"]
    if os.geteuid() == 0:  # the probe means something: unconfined, root may ask
        unconfined = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        assert "syslog allowed" in unconfined.stdout and "wx refused" not in unconfined.stdout


def test_lifeboat_works_without_writable_executable_memory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "random").write_bytes(os.urandom(3 << 20))
    (data / "text").write_text("\n".join(str(n) for n in range(100_000)))
    password_file = tmp_path / "passphrase"
    password_file.write_bytes(PASSPHRASE + b"\n")
    env = {
        "LIFEBOAT_REPO": str(tmp_path / "repo"),
        "LIFEBOAT_PASSWORD_FILE": str(password_file),
        "LIFEBOAT_PASSWORD": "",
        "LIFEBOAT_CONFIG": "",
        "LIFEBOAT_STATE_DIR": str(tmp_path / "state"),
    }
    lifeboat = [sys.executable, "-m", "lifeboat"]
    for args in (
        ["init"],
        ["backup", str(data)],
        ["check", "--read-data"],
        ["restore", "latest", "--target", str(tmp_path / "out")],
    ):
        result = _confined(*lifeboat, *args, env=env)
        assert result.returncode == 0, (args, result.stderr)
    restored = tmp_path / "out" / data.relative_to("/")
    assert (restored / "random").read_bytes() == (data / "random").read_bytes()

    imports = (
        "import numpy, cryptography.hazmat.primitives.ciphers.aead as aead, argon2, zstandard, blake3, pyfastcdc\n"
        "import fastapi, uvicorn, apprise, structlog, httpx, psycopg, prometheus_client, croniter, pydantic, yaml\n"
        "assert int(numpy.arange(10).sum()) == 45\n"
        "assert len(aead.AESGCM(bytes(32)).encrypt(bytes(12), b'x', None)) == 17\n"
        "from argon2.low_level import Type, hash_secret_raw\n"
        "assert len(hash_secret_raw(b'x', b'saltsalt', 1, 8, 1, 32, Type.ID)) == 32\n"
        "print('ok')\n"
    )
    result = _confined(sys.executable, "-c", imports)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_a_postgres_backup_and_a_restored_server_inside_the_sandbox(worlds: WorldFactory) -> None:
    """A base backup of a real cluster, then a restore that starts the recovered server — the
    server is a child of Lifeboat, inside the same rules, as a drill's scratch server is."""
    world = worlds()
    world.cluster.psql("CREATE TABLE kept AS SELECT generate_series(1, 1000) AS n")
    lifeboat = [sys.executable, "-m", "lifeboat", "--json"]
    backup = _confined(*lifeboat, "backup", "postgres", *world.conn_args(), "--archive-wait", "60s", env=world.env)
    assert backup.returncode == 0, backup.stderr
    target, port = world.new_dir("restored"), free_port()
    restore = _confined(
        *lifeboat, "restore", "postgres", "--target-dir", str(target), "--port", str(port), "--start", env=world.env
    )
    restored = world.restored(target, port)
    assert restore.returncode == 0, restore.stderr
    assert restored.psql("SELECT count(*) FROM kept") == "1000"
