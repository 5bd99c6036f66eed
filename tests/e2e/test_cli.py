"""The command line as a user meets it: outputs, JSON, messages and exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, Cli, run_cli
from tests.servers.fixtures import Server, moto_server, new_bucket, server_logs

__all__ = ["moto_server", "server_logs"]  # the S3 test server's fixtures


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_text("hello world\n")
    (root / "sub" / "big.bin").write_bytes(os.urandom(700_000))
    (root / "sub" / "skip.tmp").write_text("temporary")
    return root


@pytest.fixture
def initialised(cli: Cli) -> Cli:
    result = cli("init")
    assert result.code == 0, result
    assert "created repository" in result.stdout
    return cli


def test_init_refuses_a_non_empty_location(initialised: Cli) -> None:
    again = initialised("init")
    assert again.code == 1
    assert "is not empty" in again.stderr


def test_the_default_key_derivation_keeps_a_command_within_64_mib(
    initialised: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The key derivation's memory is held while the repository opens: with the old default
    (Argon2id 64 MiB) every command that opened a repository peaked near 100 MiB."""
    from tests.integration.test_pack_staging import peak_mib

    (key_file,) = (tmp_path / "repo" / "keys").iterdir()
    kdf = json.loads(key_file.read_text())["kdf"]
    assert kdf == {"algorithm": "argon2id", "time_cost": 4, "memory_kib": 19 * 1024, "parallelism": 1}
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"} | cli_env
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    peak_mib("snapshots", env=env)  # compiles the modules once: the interpreter's own work
    assert peak_mib("snapshots", env=env) <= 64


def test_backup_snapshots_ls_dump_and_restore(initialised: Cli, source: Path, tmp_path: Path) -> None:
    cli = initialised
    done = cli("--json", "backup", str(source), "--tag", "first", "--exclude", "*.tmp")
    assert done.code == 0, done
    summary = json.loads(done.stdout)
    assert summary["files_new"] == 2 and summary["partial"] is False
    snapshot_id = summary["snapshot"]["id"]

    listed = json.loads(cli("--json", "snapshots").stdout)
    assert [s["id"] for s in listed] == [snapshot_id]
    assert listed[0]["tags"] == ["first"] and listed[0]["paths"] == [str(source)]
    table = cli("snapshots")
    assert snapshot_id[:8] in table.stdout and "1 snapshots" in table.stdout

    entries = cli("ls", snapshot_id[:8], str(source)).stdout.splitlines()
    assert entries == [f"{source}/hello.txt", f"{source}/sub", f"{source}/sub/big.bin"]
    long = cli("ls", "latest", str(source / "hello.txt"), "--long").stdout
    assert long.startswith("-rw-r--r--") and long.rstrip().endswith("hello.txt")

    dumped = cli("dump", "latest", str(source / "sub" / "big.bin"))
    assert dumped.code == 0
    assert dumped.stdout_bytes == (source / "sub" / "big.bin").read_bytes()

    preview = cli("restore", "latest", "--target", str(tmp_path / "preview"), "--dry-run")
    assert preview.code == 0 and "would restore 2 files" in preview.stdout
    assert not (tmp_path / "preview").exists()

    target = tmp_path / "restored"
    restored = cli("restore", f"latest:{source}", "--target", str(target), "--include", "*.txt")
    assert restored.code == 0, restored
    assert sorted(p.name for p in target.rglob("*")) == ["hello.txt"]
    assert (target / "hello.txt").read_text() == "hello world\n"


def test_restore_refuses_a_non_empty_target_without_force(initialised: Cli, source: Path, tmp_path: Path) -> None:
    assert initialised("backup", str(source)).code == 0
    target = tmp_path / "busy"
    target.mkdir()
    (target / "precious").write_text("keep me")
    refused = initialised("restore", f"latest:{source}", "--target", str(target))
    assert refused.code == 1
    assert "is not empty" in refused.stderr and "--force" in refused.stderr
    assert sorted(os.listdir(target)) == ["precious"]
    forced = initialised("restore", f"latest:{source}", "--target", str(target), "--force")
    assert forced.code == 0
    assert (target / "hello.txt").exists() and (target / "precious").read_text() == "keep me"


def test_one_worker_backs_up_and_restores_and_zero_is_refused(initialised: Cli, source: Path, tmp_path: Path) -> None:
    assert initialised("backup", str(source), "-j", "1").code == 0
    target = tmp_path / "restored"
    assert initialised("restore", f"latest:{source}", "--target", str(target), "--workers", "1").code == 0
    assert (target / "sub" / "big.bin").read_bytes() == (source / "sub" / "big.bin").read_bytes()
    refused = initialised("restore", "latest", "--target", str(tmp_path / "other"), "-j", "0")
    assert refused.code == 2 and "workers" in refused.stderr
    assert not (tmp_path / "other").exists()


def test_second_backup_reuses_unchanged_files_and_diff_shows_changes(initialised: Cli, source: Path) -> None:
    cli = initialised
    first = json.loads(cli("--json", "backup", str(source)).stdout)
    (source / "hello.txt").write_text("changed\n")
    (source / "new.txt").write_text("new\n")
    (source / "sub" / "skip.tmp").unlink()
    second = json.loads(cli("--json", "backup", str(source)).stdout)
    assert second["parent"] == first["snapshot"]["id"]
    assert (second["files_new"], second["files_changed"], second["files_unmodified"]) == (1, 1, 1)
    diff = cli("diff", first["snapshot"]["id"][:10], second["snapshot"]["id"][:10])
    assert diff.code == 0
    lines = diff.stdout.splitlines()
    assert f"M  {source}/hello.txt" in lines
    assert f"+  {source}/new.txt" in lines
    assert f"-  {source}/sub/skip.tmp" in lines
    assert "1 added, 1 removed, 1 modified" in diff.stdout


def test_stdin_backup_round_trips_a_stream(initialised: Cli) -> None:
    payload = os.urandom(3_000_000)
    done = initialised("--json", "backup", "--stdin", "--stdin-name", "dump.sql", input=payload)
    assert done.code == 0, done
    snapshot = json.loads(done.stdout)["snapshot"]
    assert snapshot["kind"] == "stdin" and snapshot["source"] == "stdin:dump.sql"
    dumped = initialised("dump", "latest", "dump.sql")
    assert dumped.stdout_bytes == payload


def test_forget_dry_run_explains_and_forget_removes(initialised: Cli, source: Path) -> None:
    cli = initialised
    ids = [json.loads(cli("--json", "backup", str(source)).stdout)["snapshot"]["id"] for _ in range(4)]
    preview = cli("forget", "--keep-last", "2", "--dry-run")
    assert preview.code == 0
    assert preview.stdout.count("  keep   ") == 2 and preview.stdout.count("  remove ") == 2
    assert "last snapshot" in preview.stdout and "would remove 2 snapshots" in preview.stdout
    assert len(json.loads(cli("--json", "snapshots").stdout)) == 4
    done = json.loads(cli("--json", "forget", "--keep-last", "2").stdout)
    assert sorted(done["removed"]) == sorted(ids[:2])
    remaining = [s["id"] for s in json.loads(cli("--json", "snapshots").stdout)]
    assert remaining == ids[2:]
    empty = cli("forget")
    assert empty.code == 2 and "no retention policy given" in empty.stderr


def test_prune_removes_temporary_files_of_killed_writers_once_past_the_margin(
    initialised: Cli, source: Path, tmp_path: Path
) -> None:
    cli = initialised
    assert cli("backup", str(source)).code == 0
    repo = tmp_path / "repo"
    stale = next((repo / "data").iterdir()) / ".tmp-0123456789abcdef"  # what a SIGKILLed put leaves
    stale.write_bytes(os.urandom(100_000))
    three_hours_ago = time.time() - 3 * 3600
    os.utime(stale, (three_hours_ago, three_hours_ago))
    recent = repo / "index" / ".tmp-fedcba9876543210"  # may belong to a writer still running
    recent.write_bytes(b"x" * 1000)
    dry = cli("prune", "--dry-run")
    assert dry.code == 0, dry
    assert "remove (temporary files of interrupted writers): 1 file, 97.7 KiB" in dry.stdout
    assert stale.exists()
    done = cli("--json", "prune")
    assert done.code == 0, done
    report = json.loads(done.stdout)
    assert report["temporaries_removed"] == 1 and report["bytes_freed"] >= 100_000
    assert not stale.exists() and recent.exists()
    assert cli("check", "--read-data").code == 0


def test_prune_removes_data_of_forgotten_snapshots(initialised: Cli, tmp_path: Path) -> None:
    cli = initialised
    big = tmp_path / "big"
    big.mkdir()
    (big / "blob.bin").write_bytes(os.urandom(5_000_000))
    small = tmp_path / "small"
    small.mkdir()
    (small / "note").write_text("keep")
    assert cli("backup", str(big)).code == 0
    assert cli("backup", str(small)).code == 0
    before = json.loads(cli("--json", "stats").stdout)
    big_snapshot = json.loads(cli("--json", "snapshots", "--path", str(big)).stdout)[0]["id"]
    assert cli("forget", big_snapshot[:8]).code == 0
    dry = json.loads(cli("--json", "prune", "--dry-run").stdout)
    assert dry["plan"]["delete"]["packs"] >= 1
    pruned = json.loads(cli("--json", "prune").stdout)
    assert pruned["bytes_freed"] >= 5_000_000
    after = json.loads(cli("--json", "stats").stdout)
    assert after["stored_bytes"] < before["stored_bytes"] - 4_900_000
    assert cli("check", "--read-data").code == 0
    assert cli("dump", "latest", str(small / "note")).stdout == "keep"


def test_stats_reports_dedup(initialised: Cli, source: Path) -> None:
    for _ in range(3):
        assert initialised("backup", str(source)).code == 0
    stats = json.loads(initialised("--json", "stats").stdout)
    assert stats["snapshots"] == 3
    assert stats["dedup_ratio"] == pytest.approx(3.0, rel=0.01)
    assert stats["stored_bytes"] > 0


def test_key_add_remove_and_passwd(initialised: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    cli = initialised
    new_pass = tmp_path / "new-pass"
    new_pass.write_text("second passphrase\n")
    added = cli("--json", "key", "add", env={"LIFEBOAT_NEW_PASSWORD_FILE": str(new_pass)})
    assert added.code == 0, added
    second_id = json.loads(added.stdout)["added"]
    keys = json.loads(cli("--json", "key", "list").stdout)
    assert len(keys) == 2 and sum(k["current"] for k in keys) == 1
    # the new passphrase opens the repository
    with_second = {"LIFEBOAT_PASSWORD_FILE": str(new_pass)}
    assert cli("snapshots", env=with_second).code == 0
    # the key in use cannot be removed; the other one can
    current = next(k["id"] for k in keys if k["current"])
    refused = cli("key", "remove", current[:8])
    assert refused.code == 13 and "the key this command was opened with" in refused.stderr
    assert cli("key", "remove", second_id[:8]).code == 0
    assert cli("snapshots", env=with_second).code == 12
    # passwd replaces the passphrase in use
    third = tmp_path / "third"
    third.write_text("third passphrase\n")
    assert cli("key", "passwd", env={"LIFEBOAT_NEW_PASSWORD_FILE": str(third)}).code == 0
    assert cli("snapshots").code == 12
    assert cli("snapshots", env={"LIFEBOAT_PASSWORD_FILE": str(third)}).code == 0


def test_passphrase_sources_and_their_order(initialised: Cli, tmp_path: Path) -> None:
    command = f"{sys.executable} -c \"print('{PASSPHRASE.decode()}')\""
    assert initialised("snapshots", env={"LIFEBOAT_PASSWORD_FILE": "", "LIFEBOAT_PASSWORD_COMMAND": command}).code == 0
    assert (
        initialised("snapshots", env={"LIFEBOAT_PASSWORD_FILE": "", "LIFEBOAT_PASSWORD": PASSPHRASE.decode()}).code == 0
    )
    failing = initialised("snapshots", env={"LIFEBOAT_PASSWORD_FILE": "", "LIFEBOAT_PASSWORD_COMMAND": "false"})
    assert failing.code == 2 and "password command 'false' failed" in failing.stderr
    none = initialised("snapshots", env={"LIFEBOAT_PASSWORD_FILE": ""})
    assert none.code == 2 and "no repository passphrase available" in none.stderr


@pytest.mark.parametrize(
    ("env", "args", "code", "message"),
    [
        ({"LIFEBOAT_PASSWORD_FILE": ""}, ("snapshots",), 12, "wrong passphrase"),
        ({}, ("-r", "/nonexistent/repo", "snapshots"), 10, "no Lifeboat repository at /nonexistent/repo"),
        ({"LIFEBOAT_REPO": ""}, ("snapshots",), 2, "no repository given"),
        ({}, ("restore", "deadbeef", "--target", "/tmp/x"), 1, "no snapshot 'deadbeef'"),
        ({}, ("-r", "s3x://bucket", "snapshots"), 2, "unknown repository scheme"),
        ({}, ("check", "--read-data-subset", "150%"), 2, "invalid subset"),
        ({}, ("backup",), 2, "nothing to back up"),
        ({}, ("backup", "/x", "--lock-wait", "soon"), 2, "--lock-wait: invalid duration"),
    ],
)
def test_errors_are_one_line_with_a_hint_and_a_documented_code(
    initialised: Cli, tmp_path: Path, env: dict[str, str], args: tuple[str, ...], code: int, message: str
) -> None:
    if env.get("LIFEBOAT_PASSWORD_FILE") == "":
        wrong = tmp_path / "wrong"
        wrong.write_text("not the passphrase\n")
        env = {"LIFEBOAT_PASSWORD_FILE": str(wrong)}
    result = initialised(*args, env=env)
    assert result.code == code, result
    first, *rest = result.stderr.splitlines()
    assert first.startswith("lifeboat: error: ") and message in first
    assert rest and rest[0].startswith("  hint: ")
    assert "Traceback" not in result.stderr


def test_a_locked_repository_gives_exit_code_11(initialised: Cli, cli_env: dict[str, str]) -> None:
    from lifeboat.repository.repo import Repository
    from lifeboat.storage.local import LocalBackend

    repo = Repository.open(LocalBackend(cli_env["LIFEBOAT_REPO"]), PASSPHRASE)
    with repo.lock(exclusive=True, operation="prune"):
        result = initialised("backup", "/etc/hostname")
    assert result.code == 11, result
    assert "exclusive lock" in result.stderr and "for prune by" in result.stderr


def test_config_file_names_repository_and_sources(cli_env: dict[str, str], source: Path, tmp_path: Path) -> None:
    config = tmp_path / "lifeboat.yaml"
    config.write_text(
        f"""
repositories:
  main:
    url: {cli_env["LIFEBOAT_REPO"]}
    password_file: {cli_env["LIFEBOAT_PASSWORD_FILE"]}
sources:
  app-data:
    paths: [{source}]
    exclude: ["*.tmp"]
    tags: [app]
    retention: {{keep_last: 1}}
"""
    )
    env = {"LIFEBOAT_REPO": "", "LIFEBOAT_PASSWORD_FILE": "", "LIFEBOAT_CONFIG": str(config)}
    valid = run_cli("config", "validate", env=env)
    assert valid.code == 0 and "valid (1 repositories, 1 sources)" in valid.stdout
    assert run_cli("init", env=env).code == 0
    for _ in range(2):
        done = run_cli("--json", "backup", "--source", "app-data", env=env)
        assert done.code == 0, done
    snapshot = json.loads(done.stdout)["snapshot"]
    assert snapshot["source"] == "app-data" and snapshot["tags"] == ["app"]
    forgot = run_cli("--json", "forget", env=env)
    assert forgot.code == 0, forgot
    assert len(json.loads(forgot.stdout)["removed"]) == 1
    config.write_text("repositories: {main: {url: /x, pasword_file: /y}}\n")
    broken = run_cli("config", "validate", env=env)
    assert broken.code == 2
    assert "repositories.main.pasword_file: unknown key" in broken.stderr


def _process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in (task / "children").read_text().split())
    return found


def _shown(pid: int) -> tuple[bytes, bytes]:
    """What ``ps`` and ``top`` show of a process: its command line (argv, or the title a
    process wrote over it) and its name; and its environment."""
    proc = Path(f"/proc/{pid}")
    return (proc / "cmdline").read_bytes() + b"\0" + (proc / "comm").read_bytes(), (proc / "environ").read_bytes()


PRODUCER = """
import os, sys, time
sys.stdout.buffer.write(b"first part\\n"); sys.stdout.flush()
open(sys.argv[1], "w").close()  # running: the test may look now
while not os.path.exists(sys.argv[2]):  # until the test says go
    time.sleep(0.01)
sys.stdout.buffer.write(b"second part\\n")
"""


@pytest.mark.parametrize("passphrase_from", ["file", "environment"])
def test_secrets_never_appear_in_output_or_process_arguments(
    moto_server: Server, tmp_path: Path, passphrase_from: str
) -> None:
    """A running backup, its program included: no passphrase or storage credential in any
    process's arguments or name; no passphrase in the program's environment (nor in any
    environment, when it came from a file)."""
    passphrase, key_id, secret_key = os.urandom(12).hex(), "AKIA" + os.urandom(8).hex().upper(), os.urandom(16).hex()
    env = {
        "LIFEBOAT_REPO": f"s3://{new_bucket(moto_server)}/repo?endpoint={moto_server.endpoint}",
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "LIFEBOAT_PASSWORD": "",
        "LIFEBOAT_PASSWORD_FILE": "",
        "LIFEBOAT_CONFIG": "",
    }
    if passphrase_from == "file":
        (tmp_path / "pw").write_text(passphrase + "\n")
        env["LIFEBOAT_PASSWORD_FILE"] = str(tmp_path / "pw")
    else:
        env["LIFEBOAT_PASSWORD"] = passphrase
    assert run_cli("init", "--kdf-memory", "8MiB", "--kdf-iterations", "1", env=env).code == 0
    started, go = tmp_path / "started", tmp_path / "go"
    (tmp_path / "producer.py").write_text(PRODUCER)
    program = [sys.executable, str(tmp_path / "producer.py"), str(started), str(go)]
    backup = subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "-v", "--json", "backup", "command", "--name", "out.txt", "--", *program],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert backup.poll() is None, backup.communicate()
            assert time.monotonic() < deadline, "the program never started"
            time.sleep(0.01)
        processes = _process_tree(backup.pid)
        shown = {pid: _shown(pid) for pid in processes}
    finally:
        go.touch()  # the program finishes
    out, err = backup.communicate(timeout=300)
    assert backup.returncode == 0, err
    assert len(processes) >= 2 and b"producer.py" in shown[processes[-1]][0]  # the program was seen running
    assert b"backup" in shown[backup.pid][0]
    for pid, (title, environment) in shown.items():
        for secret in (passphrase, key_id, secret_key):  # a name is cut to 15 bytes: look for pieces
            assert not any(secret[i : i + 8].encode() in title for i in range(len(secret) - 7)), (pid, title)
        if pid != backup.pid or passphrase_from == "file":
            assert passphrase.encode() not in environment, pid
    for secret in (passphrase, key_id, secret_key):
        assert secret.encode() not in out and secret.encode() not in err
    assert json.loads(out)["snapshot"]["summary"]["bytes_total"] == len(b"first part\nsecond part\n")


def test_partial_backup_of_unreadable_files_exits_3() -> None:
    """Run as an unprivileged user (root reads everything), so a file really is unreadable."""
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="lifeboat-nobody-"))
    os.chmod(work, 0o755)
    (work / "data").mkdir(parents=True)
    (work / "data" / "readable.txt").write_text("fine")
    (work / "data" / "secret.txt").write_text("root only")
    (work / "pass").write_bytes(PASSPHRASE)
    shutil.chown(work, "nobody")
    shutil.chown(work / "pass", "nobody")
    shutil.chown(work / "data", "nobody")
    shutil.chown(work / "data" / "readable.txt", "nobody")
    os.chmod(work / "data" / "secret.txt", 0o600)  # still owned by root
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    site = next(Path(sys.prefix, "lib").glob("python3*/site-packages"))
    src = Path(__file__).resolve().parents[2] / "src"
    env = {
        "PYTHONPATH": f"{src}:{site}",
        "LIFEBOAT_REPO": str(work / "repo"),
        "LIFEBOAT_PASSWORD_FILE": str(work / "pass"),
        "HOME": str(work),
        "LIFEBOAT_STATE_DIR": str(work / "state"),  # its own, not the session's (root's)
    }

    def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "runuser",
                "-u",
                "nobody",
                "--",
                "env",
                *(f"{k}={v}" for k, v in env.items()),
                python,
                "-m",
                "lifeboat",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=work,
        )

    assert as_nobody("init", "--kdf-memory", "8MiB").returncode == 0
    result = as_nobody("backup", str(work / "data"))
    assert result.returncode == 3, result
    assert f"error: {work}/data/secret.txt: cannot read: Permission denied" in result.stderr
    assert "is partial: 1 entries could not be read" in result.stderr
    listing = as_nobody("ls", "latest", str(work / "data"))
    assert listing.stdout.splitlines() == [f"{work}/data/readable.txt"]
    shutil.rmtree(work)


def test_progress_lines_show_each_step_of_a_backup_from_the_same_events(initialised: Cli, source: Path) -> None:
    quiet = initialised("backup", str(source))
    assert quiet.code == 0 and quiet.stderr == ""  # not a terminal: no progress at all by default
    lines = initialised("backup", str(source), env={"LIFEBOAT_PROGRESS": "lines"})
    assert lines.code == 0, lines
    said = lines.stderr.splitlines()
    assert said[:2] == ["lifeboat: backup: backing up", "lifeboat: backup: store: 3 files, 683.6 KiB"]
    assert [said[3], said[5]] == ["lifeboat: backup: writing the index", "lifeboat: backup: saving the snapshot"]
    for line, step in zip(said[2::2], ("store", "commit", "snapshot"), strict=True):
        assert line.startswith(f"lifeboat: backup: {step} done in "), said
    as_json = initialised("--json", "backup", str(source), env={"LIFEBOAT_PROGRESS": "lines"})
    assert as_json.code == 0 and as_json.stderr == ""  # --json: the document only
