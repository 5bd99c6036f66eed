"""The sandbox ``schedule install --systemd`` writes does not break Lifeboat: with
``MemoryDenyWriteExecute=yes`` (emulated by the same seccomp rule, tests/install/mdwe.py) a
repository is made, backed up to, read back whole and restored from, and every library the
daemon loads imports (cryptography, numpy, argon2-cffi, zstandard, blake3, FastAPI, uvicorn,
Apprise, …). No systemd runs here to start the real unit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE

pytestmark = pytest.mark.slow

MDWE = Path(__file__).with_name("mdwe.py")


def _confined(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MDWE), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_the_filter_refuses_writable_executable_memory() -> None:
    """The emulation works: W+X memory is refused, W then X too, plain memory is not."""
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
    )
    result = _confined(sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wx", "refused", "x", "refused"]


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
