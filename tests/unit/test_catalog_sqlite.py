"""The job catalog in its default SQLite file: the shared contract, and what only a file can do wrong."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import lifeboat
from lifeboat.app.daemon.catalog import (
    Catalog,
    CatalogDamaged,
    CatalogUnavailable,
    open_catalog,
)
from lifeboat.app.daemon.catalog_schema import LATEST
from lifeboat.app.daemon.catalog_sqlite import SqliteDatabase
from lifeboat.errors import ConfigError, ExitCode
from tests.catalog_contract import (
    T0,
    Store,
    start,
    test_a_catalog_newer_than_this_program_is_refused_untouched,
    test_a_chatty_run_keeps_its_newest_events_and_says_how_many_were_dropped,
    test_a_migration_that_fails_leaves_the_catalog_as_it_was,
    test_a_run_given_its_id_keeps_it_and_its_events_are_numbered,
    test_a_run_round_trips_with_its_times_in_utc,
    test_a_version_1_catalog_is_upgraded_on_open_and_keeps_its_history,
    test_every_host_writes_its_own_runs_and_reads_all_newest_first,
    test_interrupt_unfinished_marks_only_this_hosts_running_runs,
    test_job_threads_write_at_once_and_nothing_is_lost,
    test_prune_history_removes_this_hosts_old_finished_runs_and_their_events,
    test_the_last_fire_time_is_per_host_and_job,
    test_the_queries_of_the_documentation_answer,
    test_wrong_calls_are_refused_before_anything_is_written,
)

__all__ = [  # the contract, collected here against SQLite
    "test_a_catalog_newer_than_this_program_is_refused_untouched",
    "test_a_chatty_run_keeps_its_newest_events_and_says_how_many_were_dropped",
    "test_a_migration_that_fails_leaves_the_catalog_as_it_was",
    "test_a_run_given_its_id_keeps_it_and_its_events_are_numbered",
    "test_a_run_round_trips_with_its_times_in_utc",
    "test_a_version_1_catalog_is_upgraded_on_open_and_keeps_its_history",
    "test_every_host_writes_its_own_runs_and_reads_all_newest_first",
    "test_interrupt_unfinished_marks_only_this_hosts_running_runs",
    "test_job_threads_write_at_once_and_nothing_is_lost",
    "test_prune_history_removes_this_hosts_old_finished_runs_and_their_events",
    "test_the_last_fire_time_is_per_host_and_job",
    "test_the_queries_of_the_documentation_answer",
    "test_wrong_calls_are_refused_before_anything_is_written",
]

SRC = Path(lifeboat.__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(None, str(tmp_path / "state"))


def test_the_default_catalog_is_a_private_wal_file_in_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "var" / "lib" / "lifeboat"  # absent: created, private
    old = os.umask(0)  # the modes are chosen, not left to the umask
    try:
        with open_catalog(None, state_dir=str(state), host="alpha") as catalog:
            start(catalog)
            assert catalog.location == str(state / "catalog.sqlite")
            files = sorted(path.name for path in state.iterdir())
            assert files == ["catalog.sqlite", "catalog.sqlite-shm", "catalog.sqlite-wal"]
            for name in files:
                assert (state / name).stat().st_mode & 0o777 == 0o600, name
    finally:
        os.umask(old)
    assert state.stat().st_mode & 0o777 == 0o700
    with sqlite3.connect(state / "catalog.sqlite") as plain:  # what an operator reading it sees
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert plain.execute("SELECT host, job, started, status FROM lifeboat_runs").fetchall() == [
            ("alpha", "backup:db", "2026-03-29T00:30:00.000000Z", "running")
        ]
    plain.close()


def test_a_catalog_path_is_used_as_given_and_a_relative_one_is_below_the_state_dir(tmp_path: Path) -> None:
    with open_catalog(str(tmp_path / "elsewhere" / "jobs.db"), state_dir=str(tmp_path / "s"), host="a") as catalog:
        start(catalog)
    assert (tmp_path / "elsewhere" / "jobs.db").is_file()
    with open_catalog("history/jobs.db", state_dir=str(tmp_path / "s"), host="a") as catalog:
        assert catalog.runs() == []
    assert (tmp_path / "s" / "history" / "jobs.db").is_file()


def test_two_daemons_opening_one_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    gate = threading.Barrier(4)
    opened: list[Catalog] = []
    failures: list[BaseException] = []

    def open_one(host: str) -> None:
        try:
            gate.wait()
            opened.append(open_catalog(None, state_dir=str(tmp_path), host=host))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_one, args=(f"h{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    for catalog in opened:
        catalog.close()
    with sqlite3.connect(tmp_path / "catalog.sqlite") as plain:
        versions = plain.execute("SELECT version FROM lifeboat_catalog_schema ORDER BY version").fetchall()
    plain.close()
    assert versions == [(v,) for v in range(1, LATEST + 1)]


def test_many_rounds_of_daemons_opening_one_new_file_at_once_never_fail(tmp_path: Path) -> None:
    """SQLite's switch to WAL answers "database is locked" at once (no busy wait) while another
    connection opens the same new file: without a retry this failed about one round in ten."""
    failures: list[BaseException] = []
    for round_ in range(60):
        state = tmp_path / f"r{round_}"
        gate = threading.Barrier(4)
        opened: list[Catalog] = []

        def open_one(
            host: str, state: Path = state, gate: threading.Barrier = gate, opened: list[Catalog] = opened
        ) -> None:
            try:
                gate.wait()
                opened.append(open_catalog(None, state_dir=str(state), host=host))
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=open_one, args=(f"h{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for catalog in opened:
            catalog.close()
    assert failures == []


def test_a_run_cut_short_by_kill_9_is_interrupted_at_the_next_start(tmp_path: Path) -> None:
    script = f"""
import os, signal, sys
from datetime import datetime, timezone
sys.path.insert(0, {str(SRC)!r})
from lifeboat.app.daemon.catalog import open_catalog
catalog = open_catalog(None, state_dir={str(tmp_path)!r}, host="alpha")
run = catalog.start_run(job="backup:db", kind="backup", target="db", trigger="schedule", attempt=1,
                        started=datetime(2026, 3, 29, 0, 30, tzinfo=timezone.utc))
catalog.add_event(run.id, at=datetime.now(timezone.utc), level="info", message="reading /data")
print(run.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_id = killed.stdout.strip()
    with open_catalog(None, state_dir=str(tmp_path), host="beta") as other:
        assert other.interrupt_unfinished(finished=T0) == []  # not beta's run
    restarted = T0 + timedelta(hours=2)
    with open_catalog(None, state_dir=str(tmp_path), host="alpha") as catalog:
        (marked,) = catalog.interrupt_unfinished(finished=restarted)
        assert (marked.id, marked.status, marked.finished) == (run_id, "interrupted", restarted)
        assert [event.message for event in catalog.events(run_id)] == ["reading /data"]


def test_a_write_lock_held_too_long_by_another_program_is_a_clear_error(tmp_path: Path) -> None:
    open_catalog(None, state_dir=str(tmp_path), host="alpha").close()
    path = tmp_path / "catalog.sqlite"
    other = sqlite3.connect(path, isolation_level=None)  # an operator's sqlite3 shell in a write transaction
    try:
        other.execute("BEGIN IMMEDIATE")
        catalog = Catalog(SqliteDatabase(path, busy_timeout_ms=300), host="alpha")
        try:
            assert catalog.runs() == []  # readers are not blocked (WAL)
            with pytest.raises(CatalogUnavailable) as failed:
                start(catalog)
            assert failed.value.message.startswith(
                f"the job catalog {path} stayed locked by another process for 0.3s: database is locked"
            )
            assert "an open 'sqlite3' shell?" in failed.value.hint
            other.execute("ROLLBACK")
            start(catalog)  # once the lock is gone, it writes again
            assert len(catalog.runs()) == 1
        finally:
            catalog.close()
    finally:
        other.close()


def test_a_file_that_is_not_a_catalog_is_refused_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    path.write_bytes(b"this is a text file, not an SQLite database\n" * 100)
    with pytest.raises(CatalogDamaged) as refused:
        open_catalog(None, state_dir=str(tmp_path), host="alpha")
    assert refused.value.exit_code == ExitCode.INTEGRITY
    assert refused.value.message == f"the job catalog {path} is damaged: file is not a database"
    assert "move the file aside" in refused.value.hint
    assert path.read_bytes().startswith(b"this is a text file")  # left as it was


def test_a_catalog_damaged_inside_is_reported_as_damaged_when_read(tmp_path: Path) -> None:
    with open_catalog(None, state_dir=str(tmp_path), host="alpha") as catalog:
        for n in range(300):
            run_id = start(catalog, f"backup:db{n}", at=T0 + timedelta(seconds=n))
            catalog.finish_run(run_id, status="succeeded", finished=T0, summary={"pad": "x" * 400})
    path = tmp_path / "catalog.sqlite"
    with sqlite3.connect(path) as plain:
        plain.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = plain.execute("PRAGMA page_size").fetchone()[0]
    plain.close()
    data = bytearray(path.read_bytes())
    for page in range(2, len(data) // page_size):  # every page but the first (the header and the schema)
        data[page * page_size : page * page_size + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(CatalogDamaged) as refused:
        catalog = open_catalog(None, state_dir=str(tmp_path), host="alpha")
        catalog.runs(limit=None)
    assert refused.value.message.startswith(f"the job catalog {path} is damaged: ")
    assert refused.value.exit_code == ExitCode.INTEGRITY


def _open_as_unprivileged(state_dir: Path) -> dict[str, Any]:
    """open_catalog in another process as a user who may not write ``state_dir``: its error as a dict."""
    script = f"""
import json, sys
sys.path.insert(0, {str(SRC)!r})
from lifeboat.app.daemon.catalog import open_catalog
from lifeboat.errors import LifeboatError
try:
    open_catalog(None, state_dir={str(state_dir)!r}, host="alpha")
    print(json.dumps({{"opened": "yes"}}))
except LifeboatError as exc:
    print(json.dumps({{"kind": type(exc).__name__, "code": int(exc.exit_code), "message": exc.message,
                      "hint": exc.hint}}))
"""
    if os.geteuid() == 0:  # root writes everywhere: the user nobody tries
        site = next(Path(sys.prefix, "lib").glob("python3*/site-packages"))
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        argv = ["runuser", "-u", "nobody", "--", "env", f"PYTHONPATH={site}", python, "-c", script]
    else:
        argv = [sys.executable, "-c", script]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd="/")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_state_dir_this_user_may_not_write_is_a_clear_error(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="lifeboat-catalog-"))
    try:
        base.chmod(0o555)  # readable by all, writable by none (but root)
        failed = _open_as_unprivileged(base)
        assert failed["kind"] == "CatalogUnavailable", failed
        assert failed["code"] == ExitCode.ERROR
        assert failed["message"] == f"cannot create the job catalog {base}/catalog.sqlite: Permission denied"
        assert f"must be able to write {base}/catalog.sqlite and its directory {base}" in failed["hint"]
        assert "daemon.catalog" in failed["hint"]
        failed = _open_as_unprivileged(base / "state")  # the state dir itself cannot be made
        assert failed["kind"] == "CatalogUnavailable"
        assert failed["message"] == f"cannot create the job catalog {base}/state/catalog.sqlite: Permission denied"
        assert list(base.iterdir()) == []
    finally:
        base.chmod(0o755)
        base.rmdir()


def test_a_read_only_catalog_file_is_a_clear_error(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="lifeboat-catalog-"))
    try:
        base.chmod(0o755)
        open_catalog(None, state_dir=str(base), host="alpha").close()  # root's, 0600: nobody cannot open it
        failed = _open_as_unprivileged(base)
        assert failed["kind"] == "CatalogUnavailable", failed
        assert failed["message"].startswith(f"cannot use the job catalog {base}/catalog.sqlite: ")
        assert "or set 'daemon.catalog' to a writable path" in failed["hint"]
    finally:
        for path in base.iterdir():
            path.unlink()
        base.rmdir()


def test_a_url_of_another_kind_is_refused_without_showing_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        open_catalog("mysql://admin:Sup3rSecret@db.example/jobs", state_dir=str(tmp_path), host="alpha")
    assert refused.value.message == "daemon.catalog: 'mysql' URLs are not a catalog"
    assert "Sup3rSecret" not in refused.value.message + refused.value.hint
    assert refused.value.exit_code == ExitCode.USAGE


def test_an_empty_host_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"daemon\.host"):
        open_catalog(None, state_dir=str(tmp_path), host="")
