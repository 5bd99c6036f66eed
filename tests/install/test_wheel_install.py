"""The production install (docs/install.md): the wheel ``make dist`` builds, installed into a
fresh virtual environment outside the checkout, is the ``lifeboat`` the ``postgres`` OS user
runs — from a shell, and from a real cluster's ``archive_command``.

The point (issue 12): a checkout's ``.venv`` below /root is not executable by ``postgres``;
an installed wheel in a directory every user may enter is. The environment gets its
dependencies from the package index the way ``pip install lifeboat-*.whl`` does on a host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.postgres.conftest import OS_USER, PgWorld, make_world

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "lifeboat"

pytestmark = pytest.mark.slow


@dataclass
class Installed:
    wheel: Path
    venv: Path

    @property
    def program(self) -> Path:
        return self.venv / "bin" / "lifeboat"


def _as_server_user(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as the database's OS user (postgres when the tests run as root), with a
    clean environment: nothing of this test process's PATH or PYTHONPATH leaks in."""
    clean = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", **(env or {})}
    prefix = ["runuser", "-u", OS_USER, "--"] if os.geteuid() == 0 else []
    command = [*prefix, "env", "-i", *(f"{k}={v}" for k, v in clean.items()), *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd="/")


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    """``python -m build --wheel``, then a fresh venv (the system Python, not this one) with
    the wheel pip-installed, in a directory the server user may enter."""
    base = Path(tempfile.mkdtemp(prefix="lifeboat-install-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    try:
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", str(base / "dist"), str(ROOT)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        (wheel,) = (base / "dist").glob("lifeboat-*.whl")
        python = shutil.which("python3", path="/usr/bin:/usr/local/bin")
        assert python is not None, "no system python3"
        venv = base / "venv"
        subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        # Not this process's PYTHONPATH: pip would take the checkout's lifeboat for installed.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
        pip = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert pip.returncode == 0, pip.stderr[-3000:]
        yield Installed(wheel, venv)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_wheel_holds_every_module_and_data_file() -> None:
    """Nothing the package needs at run time is left behind in the checkout: every file under
    src/lifeboat except bytecode is in a wheel built from it."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", out, str(ROOT)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        (wheel,) = Path(out).glob("lifeboat-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    expected = {
        "lifeboat/" + path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert "lifeboat/py.typed" in expected
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    assert "lifeboat = lifeboat.app.cli.entry:main" in entry_points


def test_the_server_user_runs_the_installed_program(installed: Installed) -> None:
    result = _as_server_user(installed.program, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("lifeboat "), result.stdout
    where = _as_server_user(installed.venv / "bin" / "python", "-c", "import lifeboat; print(lifeboat.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(installed.venv)), where.stdout  # the wheel, not the checkout


def test_archive_command_runs_the_installed_program(installed: Installed) -> None:
    """A real cluster archives through ``archive_command = '… <venv>/bin/lifeboat wal-push %p'``;
    the segment is in the repository, and the installed program, as the server user, lists it."""
    world: PgWorld = make_world(str(installed.program))
    try:
        assert str(installed.program) in world.cluster.psql("SHOW archive_command")
        segment = world.switch_wal()
        world.wait_archived(segment, timeout=60)
        env = {k: v for k, v in world.env.items() if k != "LIFEBOAT_SERVER_COMMAND"}
        info = _as_server_user(installed.program, "--json", "pg", "info", env=env)
        assert info.returncode == 0, info.stderr
        text = json.dumps(json.loads(info.stdout))
        assert segment in text, info.stdout
        failed = world.cluster.psql("SELECT failed_count FROM pg_stat_archiver")
        assert failed == "0", f"the archiver failed {failed} times: {(world.cluster.base / 'log').glob('*')}"
    finally:
        world.close()
