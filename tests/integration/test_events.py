"""One event stream and cancellation: what a backup tells its front end, in order, and a
cancelled backup that leaves nothing behind (docs/architecture.md §Events)."""

from __future__ import annotations

import io
import socket
import sys
import threading
from pathlib import Path

import pytest

from lifeboat.app.cli.main import report
from lifeboat.app.cli.output import Output
from lifeboat.core.events import (
    CancelToken,
    Event,
    Events,
    NoticeRaised,
    PhaseFinished,
    PhaseStarted,
    ProgramOutput,
    ProgressReport,
    ResultReady,
)
from lifeboat.errors import Cancelled, ExitCode
from lifeboat.operations.backup import BackupRequest, backup_files, backup_stream
from lifeboat.operations.maintenance import check
from lifeboat.operations.snapshots import SourceBackup, run_backup
from lifeboat.repository.repo import Repository
from lifeboat.sources.base import BackupOptions
from lifeboat.sources.command.kind import CommandSource


def small_tree(root: Path, files: int = 3) -> Path:
    root.mkdir()
    for i in range(files):
        (root / f"f{i}.txt").write_text(f"file {i}\n" * 100)
    return root


def steps(events: list[Event]) -> list[tuple[str, str]]:
    """The events as (type, phase or detail), for comparing orders."""
    shown: list[tuple[str, str]] = []
    for event in events:
        if isinstance(event, PhaseStarted | PhaseFinished | ProgressReport):
            shown.append((type(event).__name__, event.phase))
        elif isinstance(event, NoticeRaised):
            shown.append(("NoticeRaised", event.notice.severity.value))
        else:
            shown.append((type(event).__name__, ""))
    return shown


def test_a_small_backup_emits_its_steps_then_its_counters_then_its_result(
    local_repo: Repository, tmp_path: Path
) -> None:
    seen: list[Event] = []
    result = backup_files(
        local_repo, BackupRequest(paths=(str(small_tree(tmp_path / "src")),)), events=Events(seen.append)
    )
    assert steps(seen) == [
        ("PhaseStarted", "store"),
        ("ProgressReport", "store"),
        ("PhaseFinished", "store"),
        ("PhaseStarted", "commit"),
        ("PhaseFinished", "commit"),
        ("PhaseStarted", "snapshot"),
        ("PhaseFinished", "snapshot"),
        ("ResultReady", ""),
    ]
    started = seen[0]
    assert isinstance(started, PhaseStarted) and started.operation == "backup" and started.progress is not None
    counted = seen[1]
    assert isinstance(counted, ProgressReport)
    assert (counted.counters.files_done, counted.counters.bytes_done) == (3, 3 * len("file 0\n" * 100))
    assert all(isinstance(e, PhaseFinished) and e.ok for e in seen if isinstance(e, PhaseFinished))
    final = seen[-1]
    assert isinstance(final, ResultReady) and final.document == result.to_json()
    assert final.document["snapshot"]["id"] == result.snapshot.id


def test_notices_arrive_as_events_and_in_the_result(local_repo: Repository, tmp_path: Path) -> None:
    root = small_tree(tmp_path / "src")
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(root / "app.sock"))  # a socket cannot be backed up: a warning
    seen: list[Event] = []
    try:
        result = backup_files(local_repo, BackupRequest(paths=(str(root),)), events=Events(seen.append))
    finally:
        listening.close()
    raised = [e.notice for e in seen if isinstance(e, NoticeRaised)]
    assert [(n.path, n.message) for n in raised] == [(str(root / "app.sock"), "socket skipped")]
    assert raised == result.notices
    # Every notice comes while the data is stored, before the result.
    store_end = next(i for i, e in enumerate(seen) if isinstance(e, PhaseFinished) and e.phase == "store")
    assert all(i < store_end for i, e in enumerate(seen) if isinstance(e, NoticeRaised))


def test_a_cancelled_backup_leaves_no_snapshot_and_a_clean_repository(local_repo: Repository, tmp_path: Path) -> None:
    source = small_tree(tmp_path / "src", files=400)
    token = CancelToken()
    watcher: list[threading.Thread] = []

    def cancel_after_some_files(event: Event) -> None:
        if isinstance(event, PhaseStarted) and event.phase == "store" and event.progress is not None:
            progress = event.progress

            def watch() -> None:  # a front end cancelling from another thread, once files were read
                while progress.files_done < 20:
                    threading.Event().wait(0.001)
                token.cancel("asked by the test")

            watcher.append(threading.Thread(target=watch, daemon=True))
            watcher[0].start()

    with pytest.raises(Cancelled) as caught:
        backup_files(
            local_repo,
            BackupRequest(paths=(str(source),), workers=2),
            events=Events(cancel_after_some_files, cancel=token),
        )
    assert caught.value.exit_code == ExitCode.INTERRUPTED == 130
    assert "cancelled (asked by the test)" in caught.value.message
    assert local_repo.snapshots() == []
    checked = check(local_repo)
    assert checked.ok, checked.errors
    # The command line reports it as one error line with its documented exit code.
    assert report(Output(), caught.value) == 130


def test_a_cancelled_command_backup_stops_its_producer_and_saves_nothing(local_repo: Repository) -> None:
    token = CancelToken()

    def cancel_on_first_output(event: Event) -> None:
        if isinstance(event, ProgramOutput):
            token.cancel()

    # The producer says something on stderr, then streams until it is stopped.
    producer = (
        "import sys, os\n"
        "sys.stderr.write('started\\n'); sys.stderr.flush()\n"
        "while True:\n"
        "    sys.stdout.buffer.write(os.urandom(1 << 16))\n"
    )
    kind = CommandSource()
    request = kind.request(None, BackupOptions(settings={"command": (sys.executable, "-c", producer), "name": "out"}))
    with pytest.raises(Cancelled):
        run_backup(local_repo, SourceBackup(kind, request), events=Events(cancel_on_first_output, cancel=token))
    assert local_repo.snapshots() == []
    assert check(local_repo).ok


def test_a_token_cancelled_before_the_start_stops_before_anything_is_stored(local_repo: Repository) -> None:
    token = CancelToken()
    token.cancel()
    seen: list[Event] = []
    with pytest.raises(Cancelled):
        backup_stream(local_repo, io.BytesIO(b"data"), name="x", events=Events(seen.append, cancel=token))
    assert seen == []
    assert local_repo.snapshots() == []
