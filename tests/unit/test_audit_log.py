"""The audit log's file (app/observability/audit.py): private, appended whole, crash-tolerant,
and anchored in a real repository."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifeboat.app.observability.audit import Actor, AuditError, AuditLog
from lifeboat.operations.audit_anchors import ANCHOR_KIND, list_anchors
from lifeboat.operations.records import list_records
from lifeboat.repository.repo import Repository

OK = {"status": "ok", "exit_code": 0, "error": None}


def _append(log: AuditLog, action: str = "backup", **arguments: object) -> dict[str, object]:
    return log.append(actor=Actor("alice"), action=action, arguments=arguments, result=OK)


def test_the_file_is_private_and_each_entry_one_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state" / "audit.jsonl", host="db1")
    first = _append(log, paths=["/etc"])
    second = _append(log, "forget", keep_last=3)
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.path.parent.stat().st_mode) == 0o700
    lines = log.path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3
    assert [json.loads(line) for line in lines[:2]] == [first, second]
    assert second["prev"] == first["hash"] and second["seq"] == 2
    assert first["actor"] == {"user": "alice", "token": None} and first["host"] == "db1"
    assert log.verify().intact


def test_a_line_cut_by_a_crash_stays_a_line_of_its_own(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    _append(log)
    with log.path.open("ab") as file:
        file.write(b'{"seq":2,"act')  # a write the power cut short
    third = _append(log)
    assert third["seq"] == 2 and third["prev"] == json.loads(log.path.read_bytes().split(b"\n")[0])["hash"]
    assert _append(log)["seq"] == 3
    result = log.verify()
    assert [(f.line, f.kind) for f in result.findings or []] == [(2, "malformed")]  # only the cut line
    assert json.loads(log.path.read_bytes().split(b"\n")[2]) == third


def test_a_log_that_cannot_be_written_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    log = AuditLog(blocker / "audit.jsonl")
    with pytest.raises(AuditError, match=r"cannot write the audit log .*not-a-directory/audit.jsonl: Not a directory"):
        log.check_writable()
    with pytest.raises(AuditError, match="Not a directory"):
        _append(log)
    with pytest.raises(AuditError, match="there is no audit log"):
        AuditLog(tmp_path / "none.jsonl").lines()


def test_anchors_are_records_in_the_repository(tmp_path: Path, local_repo: Repository) -> None:
    clock = iter(datetime(2026, 11, 30, 10, minute, tzinfo=UTC) for minute in range(60))
    log = AuditLog(tmp_path / "audit.jsonl", host="db1", clock=lambda: next(clock))
    assert log.anchor(local_repo) is None  # nothing to anchor yet
    for _ in range(3):
        _append(log)
    assert log.anchor_if_due(local_repo, 5) is None
    _append(log)
    _append(log)
    anchor = log.anchor_if_due(local_repo, 5)
    assert anchor is not None and anchor.seq == 5
    assert log.last_anchored(local_repo.header.repository_id) == 5
    assert log.anchor_if_due(local_repo, 5) is None  # not again until 5 more
    records = list_records(local_repo, kind=ANCHOR_KIND).records
    assert len(records) == 1 and records[0].summary["seq"] == 5 and records[0].source == "db1"
    found = list_anchors(local_repo, log=anchor.log, host="db1", path=str(log.path.absolute()))
    assert found.own == [anchor] and found.replaced == []
    assert log.verify(found.own).intact

    # the tail cut after entry 3: the chain alone is intact, the anchor is not
    lines = log.path.read_bytes().split(b"\n")
    log.path.write_bytes(b"\n".join(lines[:3]) + b"\n")
    assert log.verify().intact
    result = log.verify(found.own)
    assert [f.message for f in result.findings or []] == [
        "the repository's anchor at entry 5 (2026-11-30T10:04:00.000+00:00) is past the log's end: "
        "the log was cut after entry 3"
    ]

    # the log replaced by a new one: its anchors are another log's at the same place
    log.path.unlink()
    _append(log)
    head = log.head()
    assert head is not None
    found = list_anchors(local_repo, log=head.log, host="db1", path=str(log.path.absolute()))
    assert found.own == [] and [a.seq for a in found.replaced] == [5]
    assert [f.kind for f in log.verify(found.own, found.replaced).findings or []] == ["rewritten"]


def test_the_audit_section_of_the_configuration(tmp_path: Path) -> None:
    from lifeboat.app.observability.audit import audit_path
    from lifeboat.config.loader import parse_config
    from lifeboat.errors import ConfigError

    default = parse_config("{}")
    assert (default.audit.path, default.audit.anchor_every, default.audit.required) == (None, 100, False)
    assert audit_path(default, tmp_path) == tmp_path / "audit.jsonl"
    assert audit_path(None, tmp_path) == tmp_path / "audit.jsonl"
    set_ = parse_config("audit: {path: /var/log/lifeboat/audit.jsonl, anchor_every: 0, required: true}")
    assert audit_path(set_, tmp_path) == Path("/var/log/lifeboat/audit.jsonl")
    assert set_.audit.required and set_.audit.anchor_every == 0
    for bad, key in [
        ("audit: {path: relative.jsonl}", "audit.path"),
        ("audit: {anchor_every: -1}", "audit.anchor_every"),
    ]:
        with pytest.raises(ConfigError, match=key):
            parse_config(bad)


def test_a_log_root_creates_in_another_users_state_directory_is_theirs() -> None:
    """An operator's command as root in /var/lib/lifeboat (owned by postgres) must not leave a
    root-owned 0600 log the daemon and archive_command, running as postgres, can never append to."""
    import os
    import pwd
    import subprocess
    import sys

    if os.geteuid() != 0:
        pytest.fail("this test runs as root (as the suite does): it needs another user's directory")
    import shutil
    import tempfile

    nobody = pwd.getpwnam("nobody")
    top = Path(tempfile.mkdtemp(prefix="lifeboat-audit-"))  # pytest's own directories are root's 0700
    os.chmod(top, 0o755)
    state = top / "state"
    state.mkdir(mode=0o700)
    os.chown(state, nobody.pw_uid, nobody.pw_gid)
    log = AuditLog(state / "audit.jsonl")
    _append(log)  # as root
    assert (log.path.stat().st_uid, log.path.stat().st_gid) == (nobody.pw_uid, nobody.pw_gid)
    src = Path(__file__).resolve().parents[2] / "src"
    site = next(Path(sys.prefix, "lib").glob("python3*/site-packages"))
    appended = subprocess.run(
        ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c",
         "import sys; from lifeboat.app.observability.audit import Actor, AuditLog;"
         f"AuditLog({str(log.path)!r}).append(actor=Actor('postgres'), action='wal-check', arguments={{}},"
         " result={'status': 'ok', 'exit_code': 0, 'error': None})"],
        env={**os.environ, "PYTHONPATH": f"{src}:{site}"}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        assert appended.returncode == 0, appended.stderr
        assert AuditLog(log.path).verify().intact and len(AuditLog(log.path).entries()) == 2
    finally:
        shutil.rmtree(top, ignore_errors=True)
