"""A failed source is a failed backup: missing paths, failed or silent producers, consumers that
stop early, and reading failures while a consumer runs — each an error with no snapshot and
no program left behind (docs/cli.md §backup command, §restore command, exit code 16)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import lifeboat
from lifeboat.repository.repo import Repository
from lifeboat.storage.local import LocalBackend
from tests.conftest import PASSPHRASE, Cli, CliResult

PY = sys.executable
MIB = 1 << 20

# Writes 50 MiB of seeded random bytes (the same as fifty_mib()) and a line on stderr.
PRODUCE_50_MIB = (
    "import random, sys\n"
    "r = random.Random(7)\n"
    "for _ in range(50):\n"
    "    sys.stdout.buffer.write(r.randbytes(1 << 20))\n"
    "sys.stderr.write('first line\\ndumped 50 MiB\\n')\n"
)


def fifty_mib() -> bytes:
    r = random.Random(7)
    return b"".join(r.randbytes(MIB) for _ in range(50))


def snapshots(cli: Cli) -> list[dict[str, object]]:
    listed = cli("--json", "snapshots")
    assert listed.code == 0, listed
    result: list[dict[str, object]] = json.loads(listed.stdout)
    return result


def gone(pid: int) -> bool:
    """True when no process ``pid`` exists (a zombie nobody reaped still counts as there)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_for_file(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} was not written within {timeout}s"
        time.sleep(0.02)
    return path.read_text()


@pytest.fixture
def initialised(cli: Cli) -> Cli:
    assert cli("init", "--kdf-memory", "8MiB").code == 0
    return cli


# --- paths named on the command line or in the configuration --------------------------------------


def test_a_missing_path_is_exit_16_and_saves_no_snapshot(initialised: Cli, tmp_path: Path) -> None:
    present = tmp_path / "present"
    present.mkdir()
    (present / "file").write_text("here")
    missing = tmp_path / "typo" / "data"
    for args in ([str(missing)], [str(present), str(missing)]):
        result = initialised("backup", *args)
        assert result.code == 16, result
        assert f"lifeboat: error: {missing} does not exist" in result.stderr
        assert "hint: " in result.stderr and "no snapshot was saved" in result.stderr
    assert snapshots(initialised) == []


def test_a_missing_path_fails_before_the_repository_is_opened(cli: Cli, tmp_path: Path) -> None:
    result = cli("backup", str(tmp_path / "nope"), env={"LIFEBOAT_REPO": str(tmp_path / "no-repository")})
    assert result.code == 16, result
    assert "does not exist" in result.stderr
    assert not (tmp_path / "no-repository").exists()


def test_a_missing_path_in_the_configuration_is_exit_16(
    initialised: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "lifeboat.yaml"
    missing = tmp_path / "srv" / "uploads"
    config.write_text(
        f"repositories: {{main: {{url: {cli_env['LIFEBOAT_REPO']}}}}}\nsources:\n  web: {{paths: [{missing}]}}\n"
    )
    result = initialised("-c", str(config), "backup", "--source", "web")
    assert result.code == 16, result
    assert f"lifeboat: error: source 'web': {missing} does not exist" in result.stderr
    assert snapshots(initialised) == []


def test_a_named_dangling_symlink_exists_and_is_backed_up_as_a_link(initialised: Cli, tmp_path: Path) -> None:
    """What is named is checked without following it (files vanishing during the walk: tests/integration)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "kept").write_text("kept")
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    result = initialised("--json", "backup", str(root), str(root / "dangling"))
    assert result.code == 0, result
    assert json.loads(result.stdout)["partial"] is False


# --- standard input ----------------------------------------------------------------------------


def test_an_empty_stdin_is_exit_16_unless_allow_empty(initialised: Cli) -> None:
    refused = initialised("backup", "--stdin", "--stdin-name", "dump.sql", input=b"")
    assert refused.code == 16, refused
    assert "lifeboat: error: standard input was empty (0 bytes)" in refused.stderr
    assert snapshots(initialised) == []
    kept = initialised("--json", "backup", "--stdin", "--stdin-name", "dump.sql", "--allow-empty", input=b"")
    assert kept.code == 0, kept
    assert json.loads(kept.stdout)["bytes_total"] == 0
    assert len(snapshots(initialised)) == 1
    assert initialised("dump", "latest", "dump.sql").stdout_bytes == b""


# --- backup command ----------------------------------------------------------------------------


def test_a_producer_that_fails_leaves_no_snapshot_and_names_its_last_error(initialised: Cli) -> None:
    producer = (
        "import sys\n"
        "sys.stdout.write('half a dump ' * 100000)\n"
        "sys.stderr.write('pg_dump: warning: something\\npg_dump: error: connection lost\\n')\n"
        "sys.exit(3)\n"
    )
    result = initialised("backup", "command", "--name", "appdb", "--", PY, "-c", producer)
    assert result.code == 16, result
    assert f"lifeboat: error: {PY} failed (exit status 3): pg_dump: error: connection lost" in result.stderr
    assert snapshots(initialised) == []


def test_a_producer_killed_mid_stream_leaves_no_snapshot(initialised: Cli) -> None:
    producer = (
        "import os, signal, sys\n"
        "sys.stdout.buffer.write(os.urandom(4 << 20)); sys.stdout.flush()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = initialised("backup", "command", "--name", "appdb", "--", PY, "-c", producer)
    assert result.code == 16, result
    assert "failed (killed by SIGKILL)" in result.stderr
    assert snapshots(initialised) == []


def test_a_producer_that_writes_nothing_is_exit_16_unless_allow_empty(initialised: Cli) -> None:
    silent = [PY, "-c", "import sys; sys.stderr.write('nothing to dump\\n')"]
    refused = initialised("backup", "command", "--name", "empty", "--", *silent)
    assert refused.code == 16, refused
    assert f"lifeboat: error: {PY} wrote nothing (0 bytes): nothing to dump" in refused.stderr
    assert snapshots(initialised) == []
    kept = initialised("backup", "command", "--name", "empty", "--allow-empty", "--", *silent)
    assert kept.code == 0, kept
    assert initialised("dump", "latest", "empty").stdout_bytes == b""


def test_50_mib_from_a_producer_round_trip_through_restore_command_and_dump(initialised: Cli) -> None:
    expected = hashlib.sha256(fifty_mib()).hexdigest()
    done = initialised("--json", "backup", "command", "--name", "big.bin", "--tag", "t", "--", PY, "-c", PRODUCE_50_MIB)
    assert done.code == 0, done
    document = json.loads(done.stdout)
    snapshot = document["snapshot"]
    assert snapshot["kind"] == "command" and snapshot["source"] == "big.bin" and snapshot["tags"] == ["t"]
    assert document["bytes_total"] == 50 * MIB
    ended = snapshot["extra"]["command"]
    assert ended["program"] == PY and ended["exit_status"] == 0
    assert ended["stderr"] == "first line\ndumped 50 MiB\n"
    assert "dumped 50 MiB" in done.stderr  # shown as it came

    restored = initialised("restore", "command", "latest", "--", "sha256sum")
    assert restored.code == 0, restored
    assert restored.stdout.split() == [expected, "-"]
    assert "into sha256sum, which exited 0" in restored.stderr
    as_json = initialised("--json", "restore", "command", snapshot["id"][:8] + ":/big.bin", "--", "sha256sum")
    assert as_json.code == 0, as_json
    assert json.loads(as_json.stdout)["bytes"] == 50 * MIB  # stdout holds only the JSON document
    assert expected in as_json.stderr
    dumped = initialised("dump", "latest", "big.bin")
    assert dumped.code == 0 and hashlib.sha256(dumped.stdout_bytes).hexdigest() == expected


def test_a_consumer_that_exits_early_is_exit_16_with_its_status_and_last_line(initialised: Cli) -> None:
    assert initialised("backup", "command", "--name", "big.bin", "--", PY, "-c", PRODUCE_50_MIB).code == 0
    consumer = (
        "import sys; sys.stdin.buffer.read(1000); sys.stderr.write('pg_restore: error: bad header\\n'); sys.exit(1)"
    )
    result = initialised("restore", "command", "latest", "--", PY, "-c", consumer)
    assert result.code == 16, result
    assert "stopped reading after" in result.stderr
    assert "(exit status 1): pg_restore: error: bad header" in result.stderr
    failing = initialised(
        "restore", "command", "latest", "--", PY, "-c", "import sys; sys.stdin.buffer.read(); sys.exit(2)"
    )
    assert failing.code == 16, failing
    assert f"lifeboat: error: {PY} failed (exit status 2)" in failing.stderr


def test_a_configured_command_source_backs_up_and_restores_without_passphrase_variables(
    initialised: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "restored.json"
    producer = (
        "import json, os, sys\n"
        "sys.stdout.write(json.dumps({'secret': os.environ.get('APP_SECRET'),"
        " 'names': sorted(k for k in os.environ if 'PASSWORD' in k)}))\n"
    )
    consumer = f"import sys; open({str(out)!r}, 'wb').write(sys.stdin.buffer.read())"
    config = tmp_path / "lifeboat.yaml"
    config.write_text(
        json.dumps(
            {
                "repositories": {"main": {"url": cli_env["LIFEBOAT_REPO"]}},
                "sources": {
                    "appdb": {
                        "type": "command",
                        "command": [PY, "-c", producer],
                        "restore_command": [PY, "-c", consumer],
                        "env": {"APP_SECRET": "s3cr3t-value"},
                        "tags": ["logical"],
                    }
                },
            }
        )
    )
    env = {"LIFEBOAT_PASSWORD": PASSPHRASE.decode()}
    done = initialised("-c", str(config), "--json", "backup", "--source", "appdb", env=env)
    assert done.code == 0, done
    snapshot = json.loads(done.stdout)["snapshot"]
    assert (snapshot["source"], snapshot["kind"], snapshot["tags"], snapshot["paths"]) == (
        "appdb",
        "command",
        ["logical"],
        ["appdb"],
    )
    assert "s3cr3t-value" not in done.stdout + done.stderr
    restored = initialised("-c", str(config), "restore", "command", "--source", "appdb", "latest", env=env)
    assert restored.code == 0, restored
    assert json.loads(out.read_text()) == {"secret": "s3cr3t-value", "names": []}
    # The generic restore dispatches through the source's kind: no --target, no program.
    out.unlink()
    generic = initialised("-c", str(config), "--json", "restore", "--source", "appdb", "latest", env=env)
    assert generic.code == 0, generic
    assert json.loads(out.read_text()) == {"secret": "s3cr3t-value", "names": []}
    document = json.loads(generic.stdout)
    assert (document["path"], document["exit_status"]) == ("/appdb", 0)
    no_target = initialised("-c", str(config), "restore", "latest", env=env)
    assert no_target.code == 2 and "restore: missing option --target" in no_target.stderr


# --- Lifeboat failing or stopped while a program runs ----------------------------------------------


def _start(cli_env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PY, "-m", "lifeboat", *args],
        env={**os.environ, **cli_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigterm_stops_the_backup_and_its_producer(initialised: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    pid_file = tmp_path / "producer.pid"
    producer = (
        f"import os, sys, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "while True:\n    sys.stdout.buffer.write(os.urandom(65536)); sys.stdout.flush(); time.sleep(0.005)\n"
    )
    running = _start(cli_env, "backup", "command", "--name", "forever", "--", PY, "-c", producer)
    pid = int(wait_for_file(pid_file))
    running.send_signal(signal.SIGTERM)
    _, stderr = running.communicate(timeout=60)
    assert running.returncode == 130, stderr
    assert gone(pid)
    assert snapshots(initialised) == []


def test_sigterm_stops_the_restore_and_its_consumer_before_the_stream_ends(
    initialised: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert initialised("backup", "command", "--name", "big.bin", "--", PY, "-c", PRODUCE_50_MIB).code == 0
    pid_file, marker = tmp_path / "consumer.pid", tmp_path / "complete"
    consumer = (
        f"import os, sys, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "while sys.stdin.buffer.read(65536):\n    time.sleep(0.01)\n"
        f"open({str(marker)!r}, 'w').write('saw the end of the stream')\n"
    )
    running = _start(cli_env, "restore", "command", "latest", "--", PY, "-c", consumer)
    pid = int(wait_for_file(pid_file))
    running.send_signal(signal.SIGTERM)
    _, stderr = running.communicate(timeout=60)
    assert running.returncode == 130, stderr
    assert gone(pid)
    assert not marker.exists()


@dataclass
class Nobody:
    """Lifeboat run as the unprivileged user ``nobody`` (root reads everything), on a repository it owns."""

    work: Path

    @property
    def repo(self) -> Path:
        return self.work / "repo"

    def run(self, *args: str, timeout: float = 300) -> CliResult:
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else PY
        site = next(Path(sys.prefix, "lib").glob("python3*/site-packages"))
        src = Path(lifeboat.__file__).resolve().parents[1]  # the Lifeboat under test (PYTHONPATH)
        env = {
            "PYTHONPATH": f"{src}:{site}",
            "LIFEBOAT_REPO": str(self.repo),
            "LIFEBOAT_PASSWORD_FILE": str(self.work / "pass"),
            "HOME": str(self.work),
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LIFEBOAT_STATE_DIR": str(self.work / "state"),  # its own, not the session's (root's)
        }
        argv = ["runuser", "-u", "nobody", "--", "env", *(f"{k}={v}" for k, v in env.items())]
        done = subprocess.run(
            [*argv, python, "-m", "lifeboat", *args], capture_output=True, timeout=timeout, check=False, cwd=self.work
        )
        return CliResult(
            done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"), done.stdout
        )


def nobody_repository() -> Iterator[Nobody]:
    """A repository the user ``nobody`` created and owns, removed afterwards; root may take
    files from it (root reads everything). The body of the ``nobody`` fixtures."""
    work = Path(tempfile.mkdtemp(prefix="lifeboat-nobody-"))
    os.chmod(work, 0o755)
    (work / "pass").write_bytes(PASSPHRASE)
    shutil.chown(work, "nobody")
    shutil.chown(work / "pass", "nobody")
    user = Nobody(work)
    assert user.run("init", "--kdf-memory", "8MiB").code == 0
    yield user
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def nobody() -> Iterator[Nobody]:
    yield from nobody_repository()


def test_an_unreadable_named_path_is_exit_16_not_an_empty_snapshot(nobody: Nobody) -> None:
    private = nobody.work / "private"
    private.mkdir(mode=0o700)  # root's, so nobody may not list it
    (private / "secret").write_text("root only")
    result = nobody.run("backup", str(private))
    assert result.code == 16, result
    assert f"lifeboat: error: cannot read {private}: Permission denied" in result.stderr
    assert json.loads(nobody.run("--json", "snapshots").stdout) == []


def test_a_storage_failure_mid_stream_stops_the_producer_and_exits_14(nobody: Nobody) -> None:
    (nobody.repo / "data").mkdir(exist_ok=True)
    shutil.chown(nobody.repo / "data", "nobody")
    os.chmod(nobody.repo / "data", 0o555)  # nobody owns it but may not add packs to it
    pid_file = nobody.work / "producer.pid"
    producer = (
        f"import os, sys\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "while True:\n    sys.stdout.buffer.write(os.urandom(1 << 20))\n"
    )
    result = nobody.run("backup", "command", "--name", "endless", "--", "/usr/bin/python3", "-c", producer, timeout=120)
    assert result.code == 14, result
    assert "permission denied" in result.stderr
    assert gone(int(pid_file.read_text()))
    os.chmod(nobody.repo / "data", 0o755)
    assert json.loads(nobody.run("--json", "snapshots").stdout) == []


def test_a_pack_unreadable_mid_stream_stops_the_consumer_and_exits_14(nobody: Nobody) -> None:
    python = "/usr/bin/python3"
    assert nobody.run("backup", "command", "--name", "big.bin", "--", python, "-c", PRODUCE_50_MIB).code == 0
    repo = Repository.open(LocalBackend(nobody.repo), PASSPHRASE)
    node = repo.load_tree(repo.snapshots()[-1].tree).nodes[0]
    first, last = repo.locate(node.content[0]).pack_id.hex(), repo.locate(node.content[-1]).pack_id.hex()
    assert first != last, "the stream must span two packs"
    os.chmod(nobody.repo / "data" / last[:2] / last, 0o000)
    pid_file, marker = nobody.work / "consumer.pid", nobody.work / "complete"
    consumer = (
        f"import os, sys\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "n = 0\nwhile chunk := sys.stdin.buffer.read(65536):\n    n += len(chunk)\n"
        f"open({str(marker)!r}, 'w').write(str(n))\n"
    )
    result = nobody.run("restore", "command", "latest", "--", python, "-c", consumer, timeout=120)
    assert result.code == 14, result
    assert "permission denied" in result.stderr
    assert gone(int(pid_file.read_text()))
    assert not marker.exists(), "the consumer must never see the end of a cut stream"
