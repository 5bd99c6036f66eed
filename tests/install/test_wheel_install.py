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
INSTALL_SCRIPT = ROOT / "scripts" / "install-production.sh"

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel-install")]  # one build and install


@dataclass
class Installed:
    """The production layout (scripts/install-production.sh) below ``base``."""

    base: Path
    wheel: Path
    log: str

    @property
    def venv(self) -> Path:
        return self.base / "opt" / "lifeboat"

    @property
    def program(self) -> Path:
        """The symlink on the PATH, as archive_command names it."""
        return self.base / "bin" / "lifeboat"


def _as_server_user(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as the database's OS user (postgres when the tests run as root), with a
    clean environment: nothing of this test process's PATH or PYTHONPATH leaks in."""
    clean = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", **(env or {})}
    prefix = ["runuser", "-u", OS_USER, "--"] if os.geteuid() == 0 else []
    command = [*prefix, "env", "-i", *(f"{k}={v}" for k, v in clean.items()), *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd="/")


def _install(wheel: Path, base: Path) -> subprocess.CompletedProcess[str]:
    # Not this process's PYTHONPATH: pip would take the checkout's lifeboat for installed.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    layout = ["--prefix", base / "opt" / "lifeboat", "--bin-dir", base / "bin"]
    layout += ["--etc-dir", base / "etc" / "lifeboat", "--state-dir", base / "var" / "lib" / "lifeboat"]
    layout += ["--profile-dir", base / "etc" / "profile.d"]
    return subprocess.run(
        ["bash", str(INSTALL_SCRIPT), "--user", OS_USER, *map(str, layout), str(wheel)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def built() -> Iterator[Path]:
    """A directory the server user may enter, with ``python -m build --wheel``'s wheel in dist/."""
    base = Path(tempfile.mkdtemp(prefix="lifeboat-install-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", str(base / "dist"), str(ROOT)],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def installed(built: Path) -> Installed:
    """scripts/install-production.sh with the production layout below ``built`` (the system
    Python, not this one)."""
    (wheel,) = (built / "dist").glob("lifeboat-*.whl")
    done = _install(wheel, built)
    assert done.returncode == 0, done.stderr[-3000:]
    return Installed(built, wheel, done.stdout)


def test_the_wheel_holds_every_module_and_data_file(built: Path) -> None:
    """Nothing the package needs at run time is left behind in the checkout: every file under
    src/lifeboat except bytecode is in a wheel built from it."""
    (wheel,) = (built / "dist").glob("lifeboat-*.whl")
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
    assert installed.program.resolve() == installed.venv / "bin" / "lifeboat"


def test_the_layout_has_its_owners_and_modes(installed: Installed) -> None:
    import grp
    import pwd
    import stat

    etc, state = installed.base / "etc" / "lifeboat", installed.base / "var" / "lib" / "lifeboat"
    group = "postgres" if os.geteuid() == 0 else grp.getgrgid(os.getgid()).gr_name
    assert stat.S_IMODE(etc.stat().st_mode) == 0o750
    assert (pwd.getpwuid(etc.stat().st_uid).pw_name, grp.getgrgid(etc.stat().st_gid).gr_name) == ("root", group)
    assert stat.S_IMODE(state.stat().st_mode) == 0o750
    assert pwd.getpwuid(state.stat().st_uid).pw_name == OS_USER
    assert "install-production: lifeboat " in installed.log
    profile = (installed.base / "etc" / "profile.d" / "lifeboat.sh").read_text()
    assert f"export LIFEBOAT_CONFIG={etc}/lifeboat.yaml\n" in profile
    assert f"export LIFEBOAT_STATE_DIR={state}\n" in profile


def test_installing_again_changes_nothing_and_works(installed: Installed) -> None:
    """The script is idempotent: a second run (an upgrade with the same wheel) succeeds and
    leaves a working program."""
    before = {
        p: p.stat().st_mtime_ns for p in installed.base.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }
    done = _install(installed.wheel, installed.base)
    assert done.returncode == 0, done.stderr
    after = {p: p.stat().st_mtime_ns for p in installed.base.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert after == before  # nothing rewritten: the same wheel is not installed again
    result = _as_server_user(installed.program, "--version")
    assert result.returncode == 0 and result.stdout.startswith("lifeboat "), result


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
