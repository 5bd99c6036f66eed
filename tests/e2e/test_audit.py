"""The audit log as a user and an auditor meet it: real ``lifeboat`` processes append their
entries (docs/audit.md), several at once keep one valid chain, ``audit verify`` names the line
an edit, a removal or a reordering broke, anchors in a real repository catch a cut tail, the
documented jq recipe works, and no secret ever reaches the file."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lifeboat.errors import ExitCode
from tests.conftest import Cli

SMALL_KDF = ("--kdf-memory", "8MiB", "--kdf-iterations", "1")
ROOT = Path(__file__).resolve().parents[2]


def _log_path(cli_env: dict[str, str]) -> Path:
    return Path(cli_env["LIFEBOAT_STATE_DIR"]) / "audit.jsonl"


def _entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _append_entries(path: Path, count: int, *, action: str = "backup") -> None:
    """``count`` entries written the way the daemon writes its jobs' (AuditLog.append)."""
    code = (
        "import sys\n"
        "from lifeboat.app.observability.audit import Actor, AuditLog\n"
        "log = AuditLog(sys.argv[1])\n"
        "for n in range(int(sys.argv[2])):\n"
        "    log.append(actor=Actor('lifeboat'), action=sys.argv[3], arguments={'n': n},\n"
        "               result={'status': 'ok', 'exit_code': 0, 'error': None})\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(count), action], check=True, timeout=120)


def test_each_command_records_who_what_and_how_it_ended(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.txt").write_text("hello")
    assert cli("init", *SMALL_KDF).code == 0
    backed_up = cli("--json", "backup", str(tmp_path / "tree"), "--tag", "nightly")
    assert backed_up.code == 0, backed_up
    json.loads(backed_up.stdout)  # the --json document alone on stdout
    failed = cli("restore", "deadbeef", "--target", str(tmp_path / "out"))
    assert failed.code != 0
    routed = cli("restore", "postgres", "--target-dir", str(tmp_path / "pg"), "--source", "nope")
    assert routed.code != 0
    assert cli("wal-push", str(tmp_path / "nothing")).code != 0  # PostgreSQL's per-segment command: exempt
    assert cli("--help").code == 0

    entries = _entries(_log_path(cli_env))
    assert [e["action"] for e in entries] == ["init", "backup", "restore", "restore postgres"]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    init, backup, restore, restore_pg = entries
    me = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    assert all(e["actor"] == {"user": me, "token": None} for e in entries)
    assert all(e["host"] == os.uname().nodename for e in entries)
    assert init["arguments"] == {"kdf-memory": "8MiB", "kdf-iterations": 1, "repo": cli_env["LIFEBOAT_REPO"]}
    assert backup["arguments"]["paths"] == [str(tmp_path / "tree")] and backup["arguments"]["tag"] == ["nightly"]
    assert backup["result"] == {"status": "ok", "exit_code": 0, "error": None}
    assert restore["result"]["status"] == "error" and restore["result"]["exit_code"] == failed.code
    assert restore["result"]["error"] and restore["result"]["error"] in failed.stderr
    assert restore_pg["result"]["exit_code"] == routed.code
    assert restore_pg["arguments"]["target-dir"] == str(tmp_path / "pg")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", init["time"])

    verified = cli("--json", "audit", "verify", "--no-anchors")
    assert verified.code == 0, verified
    assert json.loads(verified.stdout)["entries"] == 4 and json.loads(verified.stdout)["intact"] is True
    shown = cli("--json", "audit", "show", "--action", "restore")
    assert [e["action"] for e in json.loads(shown.stdout)] == ["restore", "restore postgres"]
    table = cli("audit", "show", "--limit", "2").stdout.splitlines()  # the newest two: this test's audit commands
    assert [line.split()[0] for line in table[2:]] == ["5", "6"]
    assert "audit verify  ok" in table[2] and "audit show    ok" in table[3]


def _sigint_as_from_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # not ignored even when the tests run in the background


@pytest.mark.parametrize(
    ("signum", "message"), [(signal.SIGTERM, "terminated by SIGTERM"), (signal.SIGINT, "interrupted")]
)
def test_an_interrupted_command_is_recorded_as_interrupted(
    cli: Cli, cli_env: dict[str, str], signum: int, message: str
) -> None:
    assert cli("init", *SMALL_KDF).code == 0
    locks = Path(cli_env["LIFEBOAT_REPO"]) / "locks"
    with subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "backup", "--stdin", "--stdin-name", "dump.sql"],
        env={**os.environ, **cli_env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_sigint_as_from_a_terminal,  # noqa: PLW1509 - it only resets one signal
    ) as running:
        assert running.stdin is not None
        running.stdin.write(b"x" * 65536)
        running.stdin.flush()
        deadline = time.monotonic() + 120
        while not (locks.is_dir() and any(not n.startswith(".tmp-") for n in os.listdir(locks))):
            assert running.poll() is None, "the backup ended before it took its lock"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        running.send_signal(signum)
        _, stderr = running.communicate(timeout=120)
    assert running.returncode == ExitCode.INTERRUPTED, stderr
    assert f"lifeboat: error: {message}" in stderr.decode().splitlines()
    last = _entries(_log_path(cli_env))[-1]
    assert last["action"] == "backup" and last["arguments"] == {
        "stdin": True,
        "stdin-name": "dump.sql",
        "repo": cli_env["LIFEBOAT_REPO"],
    }
    assert last["result"] == {"status": "interrupted", "exit_code": 130, "error": message}


def test_secrets_never_reach_the_log(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    secret_env = {"LIFEBOAT_PASSWORD": "pass-SECRET-phrase", "LIFEBOAT_PASSWORD_FILE": ""}
    refused = cli("--repo", "s3://AKIAKEY:SECRET-KEY@s3.example.com/bucket?secret_key=SECRET-Q", "snapshots")
    assert refused.code == ExitCode.USAGE
    cli("--repo", "sftp://backup:SECRET-PW@localhost:1/srv", "snapshots", env=secret_env)
    assert cli("init", *SMALL_KDF, env=secret_env).code == 0
    text = _log_path(cli_env).read_text()
    assert "SECRET" not in text
    repos = [e["arguments"]["repo"] for e in _entries(_log_path(cli_env))]
    assert repos[:2] == [
        "s3://AKIAKEY:<redacted>@s3.example.com/bucket?secret_key=<redacted>",
        "sftp://backup:<redacted>@localhost:1/srv",
    ]


def test_a_log_that_cannot_be_written_warns_once_and_keeps_the_exit_code(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the state directory would be")
    env = {"LIFEBOAT_STATE_DIR": str(blocker / "state")}
    made = cli("--json", "init", *SMALL_KDF, env=env)
    assert made.code == 0, made
    json.loads(made.stdout)  # stdout is still exactly the JSON document
    warnings = [line for line in made.stderr.splitlines() if "audit" in line]
    assert warnings == [
        f"lifeboat: warning: the audit log is not written: cannot write the audit log "
        f"{blocker}/state/audit.jsonl: Not a directory"
    ]
    failed = cli("snapshots", "--repo", str(tmp_path / "nowhere"), env=env)
    assert failed.code == ExitCode.NO_REPOSITORY  # its own exit code, not the audit's
    assert sum("audit" in line for line in failed.stderr.splitlines()) == 1

    # audit: {required: true}: nothing runs without its entry
    config = tmp_path / "lifeboat.yaml"
    config.write_text(f"audit:\n  required: true\n  path: {blocker}/audit.jsonl\n")
    refused = cli("--config", str(config), "init", *SMALL_KDF, "--repo", str(tmp_path / "second"))
    assert refused.code == ExitCode.ERROR
    assert refused.stderr.splitlines()[0] == (
        f"lifeboat: error: cannot write the audit log {blocker}/audit.jsonl: Not a directory"
    )
    assert not (tmp_path / "second").exists()  # the command did not run


def test_concurrent_appends_from_several_processes_stay_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    code = (
        "import sys\n"
        "from lifeboat.app.observability.audit import Actor, AuditLog\n"
        "log = AuditLog(sys.argv[1])\n"
        "sys.stdin.read()\n"  # start together
        "for n in range(50):\n"
        "    log.append(actor=Actor('w' + sys.argv[2]), action='backup', arguments={'n': n},\n"
        "               result={'status': 'ok', 'exit_code': 0, 'error': None})\n"
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", code, str(path), str(w)], stdin=subprocess.PIPE) for w in range(4)
    ]
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.close()
    assert [writer.wait(timeout=300) for writer in writers] == [0, 0, 0, 0]
    entries = _entries(path)
    assert [e["seq"] for e in entries] == list(range(1, 201))
    assert sorted((e["actor"]["user"], e["arguments"]["n"]) for e in entries) == sorted(
        (f"w{w}", n) for w in range(4) for n in range(50)
    )
    assert len({e["actor"]["user"] for e in entries[:100]}) > 1  # they did run at the same time
    verified = subprocess.run(
        [sys.executable, "-m", "lifeboat", "--json", "audit", "verify", "--no-anchors", "--file", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["entries"] == 200


def _tampered(source: Path, target: Path, edit: Any) -> Path:
    lines = source.read_text().splitlines()
    target.write_text("\n".join(edit(lines)) + "\n")
    return target


def test_verify_names_the_line_of_an_edit_a_removal_and_a_reordering(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _append_entries(log, 10)
    assert cli("audit", "verify", "--no-anchors", "--file", str(log)).code == 0

    def changed(lines: list[str]) -> list[str]:
        lines[4] = lines[4].replace('"action":"backup"', '"action":"status"')
        return lines

    cases = {
        "edited": (changed, "line 5: entry 5 (line 5) was changed"),
        "removed": (lambda lines: lines[:6] + lines[7:], "line 7: entry 7 is missing between lines 6 and 7"),
        "reordered": (
            lambda lines: [*lines[:2], lines[3], lines[2], *lines[4:]],
            "line 4: entry 3 (line 4) comes after entry 4 (line 3): the lines were reordered",
        ),
        "malformed": (
            lambda lines: [*lines[:8], lines[8][:40], lines[9]],
            "line 9: line 9 is not JSON (cut short, or edited by hand?)",
        ),
    }
    for name, (edit, said) in cases.items():
        target = _tampered(log, tmp_path / f"{name}.jsonl", edit)
        result = cli("audit", "verify", "--no-anchors", "--file", str(target))
        assert result.code == ExitCode.INTEGRITY, (name, result)
        assert said in result.stdout.splitlines(), (name, result.stdout)
        assert f"the audit log {target} is not intact" in result.stderr
        as_json = cli("--json", "audit", "verify", "--no-anchors", "--file", str(target))
        assert as_json.code == ExitCode.INTEGRITY
        findings = json.loads(as_json.stdout)["findings"]
        assert said.split(": ", 1)[1] in [f["message"] for f in findings], (name, findings)


def test_anchors_in_the_repository_catch_a_cut_tail(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "lifeboat.yaml"
    config.write_text("audit:\n  anchor_every: 3\n")
    env = {"LIFEBOAT_CONFIG": str(config)}
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_text("x")
    assert cli("init", *SMALL_KDF, env=env).code == 0  # entry 1
    for _ in range(3):  # entries 2, 3, 4: the backup ending entry 3 anchors it
        assert cli("backup", str(tmp_path / "tree"), env=env).code == 0
    records = json.loads(cli("--json", "records", "--kind", "audit-anchor", env=env).stdout)["records"]
    assert [r["summary"]["seq"] for r in records] == [3]
    assert records[0]["summary"]["path"] == str(_log_path(cli_env))
    anchored = cli("--json", "audit", "anchor", env=env)  # entry 6 (after 'records', entry 5)
    assert anchored.code == 0, anchored
    assert json.loads(anchored.stdout)["anchor"]["seq"] == 5
    intact = cli("audit", "verify", env=env)
    assert intact.code == 0, intact
    assert "anchors in the repository matched" in intact.stdout

    # a copy without the last lines: the chain alone is intact, the anchor of entry 5 is not
    log = _log_path(cli_env)
    copy = _tampered(log, tmp_path / "copy.jsonl", lambda lines: lines[:4])
    assert cli("audit", "verify", "--no-anchors", "--file", str(copy), env=env).code == 0
    cut = cli("audit", "verify", "--file", str(copy), env=env)
    assert cut.code == ExitCode.INTEGRITY, cut
    assert re.fullmatch(
        r"line 4: the repository's anchor at entry 5 \(\S+\) is past the log's end: the log was cut after entry 4\n",
        cut.stdout,
    )
    # the log itself cut, and commands went on writing: entry 5 is not the anchored one
    log.write_text("\n".join(log.read_text().splitlines()[:4]) + "\n")
    assert cli("snapshots", env=env).code == 0
    rewritten = cli("audit", "verify", env=env)
    assert rewritten.code == ExitCode.INTEGRITY, rewritten
    assert "the repository's anchor at entry 5 (" in rewritten.stdout
    assert "does not match: the log was rewritten at or before entry 5" in rewritten.stdout


def test_the_documented_jq_recipe_checks_a_real_log(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "audit.md").read_text()
    recipe = doc.split("<!-- audit-recipe")[1].split("```sh\n", 1)[1].split("```", 1)[0]
    odd = tmp_path / "naïve ✓ dir"
    odd.mkdir()
    assert cli("init", *SMALL_KDF).code == 0
    assert cli("backup", str(odd), "--tag", "tab\there").code == 0
    cli("ls", "latest", str(odd / "missing"))
    log = _log_path(cli_env)
    _append_entries(log, 3)

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        script = recipe.replace("LOG=audit.jsonl", f"LOG='{path}'")
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)

    good = run(log)
    assert good.returncode == 0, good
    assert good.stdout.strip() == "intact: every hash matches its entry and the chain is unbroken"
    edited = tmp_path / "edited.jsonl"
    edited.write_text(log.read_text().replace('"status":"ok"', '"status":"error"', 1))  # in line 1
    bad = run(edited)
    assert bad.returncode != 0 and "1c1" in bad.stdout  # diff names line 1
    removed = _tampered(log, tmp_path / "removed.jsonl", lambda ls: ls[:2] + ls[3:])
    gone = run(removed)
    assert gone.returncode != 0 and "line 3 (entry 4): the chain is broken here" in gone.stdout


def test_show_filters_by_time_action_and_count(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _append_entries(log, 3, action="backup")
    _append_entries(log, 2, action="restore postgres")

    def shown(*options: str) -> list[int]:
        result = cli("--json", "audit", "show", "--file", str(log), *options)
        assert result.code == 0, result
        return [e["seq"] for e in json.loads(result.stdout)]

    assert shown() == [1, 2, 3, 4, 5]
    assert shown("--since", "1h") == [1, 2, 3, 4, 5]
    assert shown("--since", "2099-01-01") == []
    assert shown("--action", "restore") == [4, 5]
    assert shown("--action", "restore postgres", "--limit", "1") == [5]
    assert shown("--action", "back") == []  # a whole command, not a prefix of a word
    bad = cli("audit", "show", "--file", str(log), "--since", "yesterday-ish")
    assert bad.code == ExitCode.USAGE
    assert bad.stderr.startswith("lifeboat: error: --since: 'yesterday-ish' is neither a time nor a duration")
