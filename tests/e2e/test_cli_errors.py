"""Every error is one line with a hint (docs/cli.md): usage mistakes, hostile values and
files, closed pipes, and the ``--json`` contract of one document per command.

The table-driven tests run hundreds of command lines through ``cli_fork.py`` (one import,
one fork per command line), so that every command and every option meets hostile input
within the suite's time budget.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest

from lifeboat.core.snapshot import Snapshot
from lifeboat.errors import ExitCode
from lifeboat.repository.repo import Repository
from lifeboat.storage.local import LocalBackend
from tests.conftest import FAST_KDF, PASSPHRASE, Cli, CliResult

DRIVER = Path(__file__).with_name("cli_fork.py")
DRIVERS = 2
SMALL_KDF = ("--kdf-memory", "8MiB", "--kdf-iterations", "1")
# Exit codes docs/cli.md documents for every command.
DOCUMENTED = {int(code) for code in ExitCode} - {int(ExitCode.INTERRUPTED)}  # every documented code but 130


def assert_one_error(stderr: str, *, alone: bool = True) -> str:
    """The error shape: ``lifeboat: error: …`` then ``  hint: …``; nothing else when ``alone``."""
    lines = stderr.splitlines()
    where = [i for i, line in enumerate(lines) if line.startswith("lifeboat: error: ")]
    assert len(where) == 1, stderr
    assert where[0] + 1 < len(lines) and lines[where[0] + 1].startswith("  hint: "), stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    if alone:
        assert len(lines) == 2 and where == [0], stderr
    return lines[where[0]].removeprefix("lifeboat: error: ")


def one_document(stdout: str) -> Any:
    """Exactly one JSON document (``json.loads`` refuses a second one after the first)."""
    return json.loads(stdout)


@pytest.fixture
def repo_cli(cli: Cli, tmp_path: Path) -> Cli:
    """A CLI whose repository exists (a cheap key) and holds one snapshot of ``tmp_path/data``."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    (data / "b.txt").write_text("beta\n")
    assert cli("init", *SMALL_KDF).code == 0
    assert cli("backup", str(data)).code == 0
    return cli


# --- usage errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ls", "--bogus"), "ls: unknown option --bogus"),
        (("--bogus",), "unknown option --bogus"),
        (("ls",), "ls: missing argument SNAPSHOT"),
        (("restore", "latest"), "restore: missing option --target"),
        (("restore", "postgres"), "restore postgres: missing option --target-dir"),
        (("key", "remove"), "key remove: missing argument KEY_ID"),
        (("bakup",), "unknown command 'bakup'"),
        (("forget", "--keep-last", "x"), "forget: --keep-last: 'x' is not a valid integer"),
        (("restore", "latest", "--target", "t", "-j", "0"), "restore: --workers: 0 is not in the range"),
        (("ls", "latest", "--tag"), "ls: option '--tag' requires an argument"),
        (("diff", "a", "b", "c"), "diff: got unexpected extra argument (c)"),
        ((), "no command given"),
        (("key",), "key: no command given"),
        (("init", "--kdf-memory", "0"), "--kdf-memory: argon2id memory 0 KiB is out of range (8 KiB to 4 GiB)"),
        (("init", "--kdf-memory", "4KiB"), "--kdf-memory: argon2id memory 4 KiB is out of range"),  # argon2 refuses it
        (("init", "--kdf-memory", "100TiB"), "--kdf-memory: argon2id memory 107374182400 KiB is out of range"),
        (("pg", "check", "--timeout", "soon"), "--timeout: invalid duration 'soon'"),
    ],
)
def test_usage_errors_are_one_line_with_a_hint_and_exit_2(cli: Cli, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.code == 2, result
    assert message in assert_one_error(result.stderr)
    assert result.stdout == ""
    as_json = cli("--json", *args)
    assert as_json.code == 2, as_json
    error = one_document(as_json.stdout)["error"]
    assert message in error["message"] and error["hint"] and error["exit_code"] == 2 and error["kind"] == "usage"
    assert message in assert_one_error(as_json.stderr)


def test_usage_error_hints_suggest_the_option_and_command_meant(cli: Cli) -> None:
    assert "did you mean --long" in cli("ls", "latest", "--lng").stderr
    assert "did you mean backup" in cli("bakup").stderr
    assert "commands: list, add, remove, passwd" in cli("key").stderr


# --- SIGTERM and Ctrl-C ----------------------------------------------------------------------------


def _held_lock(locks: Path, running: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Wait until the running command's lock object exists (not just its temporary file)."""
    deadline = time.monotonic() + timeout
    while not (locks.is_dir() and any(not name.startswith(".tmp-") for name in os.listdir(locks))):
        assert running.poll() is None, "the command ended before it took its lock"
        assert time.monotonic() < deadline, f"no lock within {timeout}s"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("signum", "message"),
    [
        (signal.SIGTERM, "terminated by SIGTERM"),
        (signal.SIGINT, "interrupted"),
    ],
)
def test_sigterm_stops_a_backup_like_ctrl_c_exit_130_lock_released_nothing_saved(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path, signum: int, message: str
) -> None:
    tree = tmp_path / "tree"
    for d in range(100):  # ten thousand small files: seconds of work after the lock is taken
        (tree / f"d{d:03}").mkdir(parents=True)
        for f in range(100):
            (tree / f"d{d:03}" / f"f{f:03}").write_bytes(os.urandom(512))
    assert cli("init", *SMALL_KDF).code == 0
    locks = Path(cli_env["LIFEBOAT_REPO"]) / "locks"
    with subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "backup", str(tree)],
        env={**os.environ, **cli_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_as_from_a_terminal,  # noqa: PLW1509 - it only resets one signal
    ) as running:
        _held_lock(locks, running)
        running.send_signal(signum)
        _, stderr_bytes = running.communicate(timeout=120)
    stderr = stderr_bytes.decode()
    assert running.returncode == 130, stderr
    assert stderr.splitlines()[-2:] == [
        f"lifeboat: error: {message}",
        "  hint: nothing was committed; earlier snapshots are intact, run the command again",
    ]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert os.listdir(locks) == []  # released, temporary files included
    assert one_document(cli("--json", "snapshots").stdout) == []
    checked = cli("check")
    assert checked.code == 0, checked


def _as_from_a_terminal() -> None:
    """In the child: Ctrl-C not ignored, even when the tests run in a background shell (which
    starts its jobs with SIGINT ignored, and Python keeps it so)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _silent_backup(cli_env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    """A backup of a program that holds its output open and writes nothing: no safe point comes."""
    pid_file = tmp_path / "producer.pid"
    script = f"echo $$ > {pid_file}; exec sleep 300"
    running = subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "backup", "command", "--name", "quiet.out", "--", "sh", "-c", script],
        env={**os.environ, **cli_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_as_from_a_terminal,  # noqa: PLW1509 - it only resets one signal
    )
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert running.poll() is None, running.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return running


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_one_sigterm_ends_a_backup_whose_program_went_silent_within_the_grace(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The first SIGTERM asks for a stop at a safe point; a program that writes nothing never
    gives one, so after the grace (app/cli/interrupts.py STOP_GRACE) Lifeboat stops it itself."""
    from lifeboat.app.cli.interrupts import STOP_GRACE

    assert cli("init", *SMALL_KDF).code == 0
    running = _silent_backup(cli_env, tmp_path)
    producer = int((tmp_path / "producer.pid").read_text())
    started = time.monotonic()
    running.send_signal(signal.SIGTERM)
    _, stderr_bytes = running.communicate(timeout=STOP_GRACE + 60)
    took = time.monotonic() - started
    stderr = stderr_bytes.decode()
    assert running.returncode == 130, stderr
    assert "lifeboat: error: terminated by SIGTERM" in stderr
    assert "Traceback" not in stderr
    assert STOP_GRACE - 1 <= took < STOP_GRACE + 30, took  # waited for a safe point, then stopped
    assert _gone(producer), "the program was left running"
    assert one_document(cli("--json", "snapshots").stdout) == []
    assert os.listdir(Path(cli_env["LIFEBOAT_REPO"]) / "locks") == []


def test_a_second_ctrl_c_stops_at_once(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    from lifeboat.app.cli.interrupts import STOP_GRACE

    assert cli("init", *SMALL_KDF).code == 0
    running = _silent_backup(cli_env, tmp_path)
    producer = int((tmp_path / "producer.pid").read_text())
    started = time.monotonic()
    while running.poll() is None and time.monotonic() - started < STOP_GRACE + 60:
        running.send_signal(signal.SIGINT)  # again and again, as a user does (two at once are one signal)
        with contextlib.suppress(subprocess.TimeoutExpired):
            running.wait(timeout=0.2)
    took = time.monotonic() - started
    _, stderr_bytes = running.communicate(timeout=60)
    stderr = stderr_bytes.decode()
    assert running.returncode == 130, stderr
    assert took < STOP_GRACE / 2, f"the second Ctrl-C did not stop it at once ({took:.1f}s)"
    assert stderr.splitlines()[-2] == "lifeboat: error: interrupted", stderr
    assert _gone(producer)
    assert one_document(cli("--json", "snapshots").stdout) == []


# --- a closed pipe -------------------------------------------------------------------------------


def test_ls_into_a_closed_pipe_ends_quietly_like_other_unix_tools(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    many = tmp_path / "many"
    many.mkdir()
    for i in range(3000):  # far more listing than a pipe holds
        (many / f"file-with-a-long-enough-name-{i:05d}.txt").touch()
    assert cli("init", *SMALL_KDF).code == 0
    assert cli("backup", str(many)).code == 0
    env = {**os.environ, **cli_env}
    piped = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m lifeboat ls latest | head -1"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    (first,) = piped.stdout.decode().splitlines()
    assert str(many).startswith(first)  # the first entry: a directory on the way to the backed-up one
    assert piped.stderr == b""  # no "internal error: BrokenPipeError", no "Exception ignored"
    assert piped.returncode == 128 + signal.SIGPIPE  # what seq, git and restic give: killed by SIGPIPE
    assert os.listdir(Path(cli_env["LIFEBOAT_REPO"]) / "locks") == []  # the shared lock was released

    with subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "--json", "ls", "latest"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline() == b"{\n"
        process.stdout.close()
        assert process.stderr.read() == b""
        assert process.wait(timeout=120) == -signal.SIGPIPE
    assert os.listdir(Path(cli_env["LIFEBOAT_REPO"]) / "locks") == []


def test_dump_into_a_closed_pipe_ends_quietly(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    (big / "blob.bin").write_bytes(os.urandom(4 << 20))
    assert cli("init", *SMALL_KDF).code == 0
    assert cli("backup", str(big)).code == 0
    piped = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m lifeboat dump latest {big}/blob.bin | head -c 10 >/dev/null"],
        env={**os.environ, **cli_env},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert piped.returncode == 0 and piped.stderr == b""


def test_a_file_name_that_is_not_utf8_is_listed_as_its_bytes_in_a_strict_utf8_locale(cli: Cli, tmp_path: Path) -> None:
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name\n")
    assert cli("init", *SMALL_KDF).code == 0
    assert cli("backup", str(odd)).code == 0
    strict = {"PYTHONIOENCODING": "utf-8:strict"}  # what en_US.UTF-8 gives: no surrogateescape
    listed = cli("ls", "latest", str(odd), env=strict)
    assert listed.code == 0 and listed.stderr == "", listed
    assert listed.stdout_bytes == os.fsencode(odd) + b"/caf\xe9.txt\n"
    described = cli("--json", "ls", "latest", str(odd), env=strict)
    assert described.code == 0
    assert one_document(described.stdout)["entries"][0]["path"] == os.fsdecode(os.fsencode(odd) + b"/caf\xe9.txt")


# --- durations ------------------------------------------------------------------------------------


def test_durations_accept_bare_seconds_on_the_command_line_and_in_the_configuration(
    repo_cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert repo_cli("backup", str(tmp_path / "data"), "--lock-wait", "5").code == 0
    assert repo_cli("forget", "--keep-within", "86400", "--dry-run").code == 0
    assert repo_cli("prune", "--safety-margin", "3600", "--dry-run").code == 0
    config = tmp_path / "lifeboat.yaml"
    config.write_text(
        f"repositories:\n  main: {{url: {cli_env['LIFEBOAT_REPO']}, lock_wait: 30}}\n"
        "retention: {keep_within: 600}\n"
        "sources:\n  db: {type: postgres, data_directory: /srv/pg, archive_wait: 120}\n"
    )
    valid = repo_cli("-c", str(config), "config", "validate")
    assert valid.code == 0, valid
    assert repo_cli("-c", str(config), "snapshots").code == 0


# --- bad input that reached an internal error -----------------------------------------------------


def test_a_binary_or_deeply_nested_configuration_is_a_configuration_error(cli: Cli, tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8)
    deep = tmp_path / "deep.yaml"
    deep.write_text("repositories: " + "[" * 5000 + "]" * 5000 + "\n")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("".join("  " * i + f"k{i}:\n" for i in range(1200)))
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (5 << 20))
    for path, args, message in (
        (binary, ("config", "validate"), "is not UTF-8 text"),
        (binary, ("snapshots",), "is not UTF-8 text"),
        (deep, ("config", "validate"), "nested too deeply"),
        (mapping, ("snapshots",), "nested too deeply"),
        (huge, ("config", "validate"), "larger than 4 MiB"),
        (tmp_path, ("snapshots",), "Is a directory"),
    ):
        result = cli("-c", str(path), *args)
        assert result.code == 2, result
        assert message in assert_one_error(result.stderr)


def test_restore_into_a_path_below_a_file_is_refused(repo_cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for target in (blocker / "sub", blocker / "sub" / "deeper"):
        result = repo_cli("restore", "latest", "--target", str(target))
        assert result.code == 2, result
        assert f"{blocker} is not a directory" in assert_one_error(result.stderr)
    assert blocker.read_text() == "not a directory"
    empty = repo_cli("restore", "latest", "--target", "")
    assert empty.code == 2 and "empty path" in assert_one_error(empty.stderr)


def test_stats_reports_a_snapshot_with_a_malformed_summary_and_counts_the_rest(
    repo_cli: Cli, cli_env: dict[str, str]
) -> None:
    good = one_document(repo_cli("--json", "stats").stdout)
    repo = Repository.open(LocalBackend(cli_env["LIFEBOAT_REPO"]), PASSPHRASE)
    tree = repo.snapshots()[0].tree
    bad = repo.save_snapshot(
        Snapshot(time=datetime.now(UTC), source="odd", kind="files", tree=tree, summary={"bytes_total": "lots"})
    )
    result = repo_cli("stats")
    assert result.code == 13, result
    assert f"error: snapshot {bad.short_id}: its summary is malformed: bytes_total is 'lots'" in result.stdout
    assert "snapshots:            2" in result.stdout
    assert "1 snapshots were left out of the statistics" in assert_one_error(result.stderr)
    as_json = repo_cli("--json", "stats")
    assert as_json.code == 13
    document = one_document(as_json.stdout)
    assert document["restore_bytes"] == good["restore_bytes"] and document["files"] == good["files"]
    problem = f"snapshot {bad.short_id}: its summary is malformed: bytes_total is 'lots', not a count"
    assert document["problems"] == [problem]


def test_backup_of_an_empty_path_is_refused(repo_cli: Cli, tmp_path: Path) -> None:
    before = one_document(repo_cli("--json", "snapshots").stdout)
    for args in (("",), (str(tmp_path / "data"), "")):
        result = repo_cli("backup", *args)
        assert result.code == 2, result
        assert "an empty path was given" in assert_one_error(result.stderr)
    assert one_document(repo_cli("--json", "snapshots").stdout) == before


def test_a_malformed_pattern_is_refused_with_the_pattern_named(
    repo_cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    before = one_document(repo_cli("--json", "snapshots").stdout)
    config = tmp_path / "lifeboat.yaml"
    config.write_text(
        f"repositories: {{main: {{url: {cli_env['LIFEBOAT_REPO']}}}}}\n"
        f"sources:\n  home: {{paths: [{tmp_path / 'data'}], exclude: ['*.tmp', 'data/[abc']}}\n"
    )
    for args, pattern in (
        (("backup", str(tmp_path / "data"), "--exclude", "["), "["),
        (("backup", str(tmp_path / "data"), "--include", "[!"), "[!"),
        (("restore", "latest", "--target", str(tmp_path / "out"), "--include", "a/[b/c"), "a/[b/c"),
        (("restore", "latest", "--target", str(tmp_path / "out"), "--exclude", "["), "["),
        (("-c", str(config), "config", "validate"), "data/[abc"),
        (("-c", str(config), "backup", "--source", "home"), "data/[abc"),
    ):
        result = repo_cli(*args)
        assert result.code == 2, result
        assert f"invalid pattern {pattern!r}" in assert_one_error(result.stderr)
    assert not (tmp_path / "out").exists()
    assert one_document(repo_cli("--json", "snapshots").stdout) == before


def test_the_wrong_passphrase_hint_says_what_helps(repo_cli: Cli, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    result = repo_cli("snapshots", env={"LIFEBOAT_PASSWORD_FILE": str(wrong)})
    assert result.code == 12
    assert_one_error(result.stderr)
    hint = result.stderr.splitlines()[1]
    assert "key list" not in hint  # it needs the passphrase that just failed
    assert "LIFEBOAT_PASSWORD_FILE" in hint and "key add" in hint


# --- one JSON document per command ----------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working directory every forked command line gets a fresh copy of: ``repo`` (one
    snapshot of ``data``, a second key), an empty repository ``repo2``, passphrase files and
    configuration files, good and bad."""
    root = tmp_path_factory.mktemp("cli-template")
    (root / "pass").write_bytes(PASSPHRASE + b"\n")
    (root / "newpass").write_text("a new passphrase\n")
    (root / "data").mkdir()
    (root / "data" / "a.txt").write_text("alpha\n")
    (root / "pg_wal").mkdir()
    env = {"LIFEBOAT_REPO": str(root / "repo"), "LIFEBOAT_PASSWORD_FILE": str(root / "pass")}
    for name in ("repo", "repo2"):
        done = run(["init", *SMALL_KDF], {**env, "LIFEBOAT_REPO": str(root / name)}, cwd=root)
        assert done.returncode == 0, done
    assert run(["backup", "data"], env, cwd=root).returncode == 0
    repo = Repository.open(LocalBackend(root / "repo"), PASSPHRASE)
    (root / "second-key").write_text(repo.add_key(b"a new passphrase", kdf=FAST_KDF)[:8])  # cheap to try
    (root / "good.yaml").write_text("repositories: {main: {url: repo, password_file: pass}}\n")
    (root / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (root / "pattern.yaml").write_text("sources: {s: {paths: [/x], exclude: ['[']}}\n")
    (root / "dates.yaml").write_text("retention: {keep_within: 2020-13-45}\nx: !!int 'zz'\n")
    yield root


def run(argv: list[str], env: dict[str, str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lifeboat", *argv],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def base_env() -> dict[str, str]:
    return {
        "LIFEBOAT_REPO": "{work}/repo",
        "LIFEBOAT_PASSWORD_FILE": "{work}/pass",
        "LIFEBOAT_FROM_PASSWORD_FILE": "{work}/pass",
        "LIFEBOAT_NEW_PASSWORD_FILE": "{work}/newpass",
        "LIFEBOAT_WAL_SPOOL": "{work}/spool",
        "PATH": os.environ["PATH"],
        "HOME": "{work}",
        "PGHOST": "{work}/no-server-here",
        "PGPORT": "1",  # never a server someone else runs (-h 0 would reach one on 5432)
        "PGCONNECT_TIMEOUT": "2",
    }


def run_many(template: Path, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run command lines through the forking driver; each gets a fresh copy of ``template``."""
    for case in cases:
        case.setdefault("template", str(template))
        case["env"] = {**base_env(), **case.get("env", {})}
    found: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        drivers = []
        for part in range(DRIVERS):  # one driver per core: the cases are independent
            given, results = Path(scratch, f"cases-{part}.json"), Path(scratch, f"results-{part}.json")
            given.write_text(json.dumps(cases[part::DRIVERS]))
            command = [sys.executable, str(DRIVER), str(given), str(results)]
            drivers.append((subprocess.Popen(command, stderr=subprocess.PIPE, text=True), results))
        parts = []
        for process, results in drivers:
            _, errors = process.communicate(timeout=900)
            assert process.returncode == 0, errors
            parts.append(json.loads(results.read_text()))
    for i in range(len(cases)):
        found.append(parts[i % DRIVERS][i // DRIVERS])
    return found


def as_result(found: dict[str, Any]) -> CliResult:
    return CliResult(found["code"], found["stdout"], found["stderr"], found["stdout"].encode())


# (command line, whether it succeeds — None: fails, and its document is its report rather than
# the error); every command appears with an error too.
JSON_TABLE: list[tuple[list[str], bool | None]] = [
    (["init", *SMALL_KDF], False),  # the location is not empty
    (["-r", "{work}/fresh", "init", *SMALL_KDF], True),
    (["backup", "data"], True),
    (["backup"], False),
    (["backup", "postgres"], False),
    (["snapshots"], True),
    (["ls", "latest"], True),
    (["ls", "0000"], False),
    (["restore", "latest", "--target", "out"], True),
    (["restore", "latest", "--target", "data"], False),  # not empty
    (["restore", "postgres", "--target-dir", "pgdata"], False),
    (["dump", "latest", "{work}/data/a.txt"], False),  # the file's bytes have no JSON form
    (["diff", "latest", "latest"], True),
    (["check"], True),
    (["check", "--read-data-subset", "150%"], False),
    (["forget", "--keep-last", "1"], True),
    (["forget", "--keep-last", "1", "--prune"], True),
    (["forget"], False),
    (["prune"], True),
    (["prune", "--safety-margin", "soon"], False),
    (["stats"], True),
    (["unlock"], True),
    (["copy", "--from", "{work}/repo", "--to", "{work}/repo2", "--all"], True),
    (["copy"], False),
    (["key", "list"], True),
    (["key", "remove", "{second_key}"], True),
    (["key", "remove", "ffffffff"], False),
    (["key", "add"], True),
    (["key", "passwd"], True),
    (["repair", "index"], True),
    (["-c", "{work}/good.yaml", "config", "validate"], True),
    (["-c", "{work}/binary.yaml", "config", "validate"], False),
    (["pg", "info"], True),
    (["pg", "info", "--system-id", "x"], True),
    (["pg", "prune-wal"], True),
    (["pg", "check"], None),  # fails, with its report as the document
    (["pg", "setup"], False),
    (["wal-push"], False),
    (["wal-fetch", "x"], False),
    (["-r", "{work}/nowhere", "snapshots"], False),
]


def test_every_command_prints_one_json_document_on_success_and_on_error(template: Path) -> None:
    second_key = (template / "second-key").read_text()
    cases = [{"argv": ["--json", *(a.replace("{second_key}", second_key) for a in argv)]} for argv, _ in JSON_TABLE]
    failures = []
    for (argv, succeeds), found in zip(JSON_TABLE, run_many(template, cases), strict=True):
        result = as_result(found)
        try:
            document = one_document(result.stdout)
            if succeeds:
                assert result.code == 0 and "error" not in document
            elif succeeds is None:
                assert result.code in DOCUMENTED - {0} and "error" not in document
                assert_one_error(result.stderr, alone=False)
            else:
                assert result.code in (DOCUMENTED | ({126} if "wal-fetch" in argv else set())) - {0}
                assert document["error"]["exit_code"] == result.code and document["error"]["kind"]
                assert document["error"]["message"] in assert_one_error(result.stderr, alone=False)
        except (AssertionError, ValueError, KeyError, TypeError) as exc:
            failures.append(f"{' '.join(argv)}: {exc!r}: {result!r}")
    assert not failures, "\n".join(failures)


def test_forget_with_prune_prints_one_document_holding_both(template: Path) -> None:
    (found,) = run_many(template, [{"argv": ["--json", "forget", "--keep-last", "1", "--prune"]}])
    assert found["code"] == 0, found
    document = one_document(found["stdout"])
    assert document["removed"] == [] and document["prune"]["dry_run"] is False


# --- every command against hostile input ----------------------------------------------------------

HOSTILE = ["", "[", "-1", "0", "x" * 3000, "\udcff", "9" * 40, "/dev/zero", "latest", "%n%s{}", "a\nb"]
# Plausible values for required parameters, so the parameter under test is reached.
FILLS = {"snapshot": "latest", "first": "latest", "second": "latest", "target": "out", "target_dir": "pgout"}
FILLS |= {"key_id": "ffffffff", "name": "000000010000000000000001", "path": "data"}


def commands() -> Iterator[tuple[list[str], click.Command]]:
    """Every command as a user types it (``restore postgres``, ``key add``)."""
    from lifeboat.app.cli.main import ROUTED_KINDS, app

    user_names = {routed: [verb, kind] for (verb, kind), routed in ROUTED_KINDS.items()}

    def walk(command: click.Command, path: list[str]) -> Iterator[tuple[list[str], click.Command]]:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, *user_names.get(name, [name])])
        else:
            yield path, command

    yield from walk(app.build(), [])


# Flags the table leaves out: they act outside the working directory (a server, every lock).
UNSAFE_FLAGS = {"--apply", "--start", "--remove-all", "--help"}


def takes_value(param: click.Parameter) -> bool:
    return not (isinstance(param, click.Option) and (param.is_flag or param.count))


def hostile_cases(*, every_value: bool) -> list[list[str]]:
    """``--help`` and no arguments for every command; each parameter taking a value with a
    hostile value (all of them, or one each in turn), the others filled plausibly."""
    cases: list[list[str]] = [["backup", "--stdin", "--stdin-name", value] for value in ("", ".", "..", "a/b")]
    turn = 0
    for path, command in commands():
        cases.append([*path, "--help"])
        cases.append(["--json", *path])
        wal = path[0] in ("wal-push", "wal-fetch")
        required = [p for p in command.params if p.required and isinstance(p, click.Argument)]
        fills = [FILLS.get(p.name or "", "x") for p in required]
        fills += [o for p in command.params if p.required and isinstance(p, click.Option) for o in (p.opts[-1], "x")]
        flags = [p.opts[0] for p in command.params if not takes_value(p) and p.opts[0] not in UNSAFE_FLAGS]
        cases.append([*path, *fills, *flags])  # every flag at once
        for param in command.params:
            if not takes_value(param):
                continue
            values = HOSTILE if every_value else [HOSTILE[turn % len(HOSTILE)]]
            turn += 1
            for value in values:
                args = [FILLS.get(p.name or "", "x") for p in required if p is not param]
                if isinstance(param, click.Argument):
                    position = required.index(param) if param in required else len(args)
                    args.insert(position, value)
                else:
                    args += [param.opts[-1], value]
                if isinstance(param, click.Option) or param not in required:
                    args += [
                        o
                        for p in command.params
                        if p.required and isinstance(p, click.Option)
                        for o in (p.opts[-1], FILLS.get(p.name or "", "x"))
                        if p is not param
                    ]
                if wal:
                    args.append("--sync")  # never leave a background worker behind
                cases.append(["--json", *path, *args] if turn % 2 else [*path, *args])
    return cases


HOSTILE_ENV: list[tuple[list[str], dict[str, str]]] = (
    [
        (["snapshots"], {"LIFEBOAT_REPO": value})
        for value in ["", "[", "/dev/zero", "{work}/data/a.txt", "{work}/nowhere", "x://y", "file://u:pw@", "\udcff"]
    ]
    + [
        (["snapshots"], {"LIFEBOAT_CONFIG": value})
        for value in ["{work}/binary.yaml", "{work}/pattern.yaml", "{work}/dates.yaml", "/dev/zero", "{work}"]
    ]
    + [
        (["snapshots"], {"LIFEBOAT_PASSWORD_FILE": value})
        for value in ["/dev/null", "/dev/zero", "{work}", "{work}/nowhere", "{work}/data/a.txt"]
    ]
    + [
        (["snapshots"], {"LIFEBOAT_PASSWORD_FILE": "", "LIFEBOAT_PASSWORD_COMMAND": value})
        for value in ['"unclosed', "false", "{work}/data", "{work}/data/a.txt", "no-such-program-x"]
    ]
)


def check_outcome(argv: list[str], found: dict[str, Any]) -> None:
    """A documented exit code; an error is one line and a hint; never a traceback; under
    ``--json`` exactly one document on stdout (``--help`` and wal-push/wal-fetch excepted)."""
    assert not found["timed_out"], "did not finish"
    code, stdout, stderr = found["code"], found["stdout"], found["stderr"]
    help_asked = "--help" in argv
    wal = any(a in ("wal-push", "wal-fetch") for a in argv) and "--sync" in argv
    allowed = {0, 1, 126} if "wal-fetch" in argv else DOCUMENTED
    assert code in allowed, f"exit code {code}"
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    if help_asked:
        assert code == 0 and stdout.startswith("Usage: lifeboat") and stderr == ""
        return
    if code not in (0, 1) or (code == 1 and not wal):
        assert_one_error(stderr, alone=False)
    if "--json" in argv and not wal:
        document = one_document(stdout)
        if code != 0 and isinstance(document, dict) and "error" in document:
            assert document["error"]["exit_code"] == code


def test_hostile_command_lines_and_environments_end_in_documented_outcomes(template: Path) -> None:
    """Every command, ``--help`` included, with hostile values in every parameter (one each in
    turn; LIFEBOAT_FUZZ_ALL=1 tries every value everywhere) and hostile environments."""
    argvs = hostile_cases(every_value=os.environ.get("LIFEBOAT_FUZZ_ALL") == "1")
    cases = [{"argv": argv} for argv in argvs] + [{"argv": argv, "env": env} for argv, env in HOSTILE_ENV]
    failures = []
    for case, found in zip(cases, run_many(template, cases), strict=True):
        try:
            check_outcome(case["argv"], found)
        except (AssertionError, ValueError) as exc:
            shown = {k: (v[:300] if isinstance(v, str) else v) for k, v in found.items() if k != "argv"}
            failures.append(f"{case['argv']!r} {case.get('env', {})!r}: {exc}: {shown}")
    assert not failures, f"{len(failures)} of {len(cases)} failed:\n" + "\n".join(failures)
