"""The drills of the other kinds: a Redis scratch server (the kind's ``scratch()``), a restore
into the scratch directory and the kind's verify (files, sqlite and the kinds that restore into a
directory), or the kind's verify alone (no scratch instance yet)."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import time
from collections.abc import Mapping
from typing import Any

from lifeboat.core.drill import (
    DrillResult,
)
from lifeboat.core.snapshot import Snapshot
from lifeboat.errors import UsageError
from lifeboat.operations.drill.context import Drill, run_queries, scratch_directory, snapshot_for, teardown
from lifeboat.operations.read_lock import read_lock
from lifeboat.sources.base import IntoDirectory, RestoreContext, RestoreInto

# --- Redis ---------------------------------------------------------------------------------


def drill_redis(d: Drill) -> None:
    from lifeboat.sources.registry import source_kind
    from lifeboat.sources.tools.redis_server import _cli

    result = d.result
    result.method = "a scratch redis-server loading the RDB; queries are Redis commands"
    began = time.monotonic()
    snapshot = snapshot_for(d)
    d.check_space(int(snapshot.summary.get("bytes_total", 0)), f"snapshot {snapshot.short_id}")
    kind = source_kind("redis")
    directory = scratch_directory(d)
    result.add_phase("plan", time.monotonic() - began)
    started = time.monotonic()
    ctx = RestoreContext(loader=d.repo, events=d.events, config=d.config, environment=d.request.environment)
    try:
        with read_lock(d.repo, use_lock=True):
            instance = kind.scratch(ctx, snapshot, str(directory / "redis"))
    except BaseException:
        teardown(lambda: shutil.rmtree(directory, ignore_errors=True))
        result.add_phase("restore", time.monotonic() - started)
        raise
    try:
        result.add_phase("start", time.monotonic() - started)
        port = int(instance.address["port"])
        validating = time.monotonic()

        def run(sql: str, database: str | None) -> Any:
            answer = _cli(port, *(["-n", database] if database else []), *shlex.split(sql)).strip().splitlines()
            return answer[0] if answer else None

        run_queries(d, run)
        result.add_phase("validate", time.monotonic() - validating)
    finally:
        teardown(instance.stop, lambda: shutil.rmtree(directory, ignore_errors=True))


# --- every other kind: restore into the scratch directory, then the kind's verify -----------


def drill_by_restore(d: Drill) -> None:
    from lifeboat.sources.registry import source_kind

    result = d.result
    kind = source_kind(d.config.type)
    began = time.monotonic()
    snapshot = snapshot_for(d)
    if RestoreInto.DIRECTORY not in kind.restores_into:
        _drill_by_verify(d, kind, snapshot, began)
        return
    answers_queries = kind.name == "sqlite"
    if d.drill.queries and not answers_queries:
        result.notes.append(f"validation queries are not run for a {kind.name} source (no instance serves them)")
    result.method = f"restored into a scratch directory, then checked by the {kind.name} kind" + (
        "; queries run on the restored files" if answers_queries else ""
    )
    d.check_space(int(snapshot.summary.get("bytes_total", 0)), f"snapshot {snapshot.short_id}")
    directory = scratch_directory(d)
    result.add_phase("plan", time.monotonic() - began)
    try:
        started = time.monotonic()
        ctx = RestoreContext(loader=d.repo, events=d.events, config=d.config, environment=d.request.environment)
        with read_lock(d.repo, use_lock=True):
            restored = kind.restore(ctx, snapshot, IntoDirectory(str(directory / "restored"), workers=2))
            result.add_phase("restore", time.monotonic() - started)
            failure = restored.failure()
            if failure is not None:
                raise type(failure)(f"the restore is incomplete: {failure.message}", hint=failure.hint)
            counted = restored.to_json()
            written = counted.get("databases")
            if isinstance(written, list):  # sqlite: one entry per database file
                result.restored_files = len(written)
                result.restored_bytes = sum(int(db.get("bytes", 0)) for db in written)
            else:
                result.restored_files = int(counted.get("files", 0))
                result.restored_bytes = int(counted.get("bytes", 0))
            validating = time.monotonic()
            verification = kind.verify(ctx, snapshot)
        for problem in verification.problems:
            result.fail(problem)
        if kind.name == "files":
            _compare_counts(result, snapshot)
        if answers_queries and isinstance(written, list):
            files = {str(db["database"]): str(db["path"]) for db in written}
            run_queries(d, lambda sql, database: _sqlite_value(files, sql, database))
        result.add_phase("validate", time.monotonic() - validating)
    finally:
        teardown(lambda: shutil.rmtree(directory, ignore_errors=True))


def _sqlite_value(files: Mapping[str, str], sql: str, database: str | None) -> Any:
    """The first column of the first row of ``sql`` on a restored SQLite file, opened read-only:
    ``database`` is its path when backed up (or its file name); default: the only one."""
    import sqlite3
    from urllib.request import pathname2url

    from lifeboat.errors import SourceError

    if database:
        chosen = [path for name, path in files.items() if database in (name, os.path.basename(name))]
    else:
        chosen = list(files.values()) if len(files) == 1 else []
    if len(chosen) != 1:
        raise UsageError(
            f"query database {database or '(none given)'}: "
            + ("not among" if database else "choose one of")
            + f" the restored databases {', '.join(sorted(files))}"
        )
    try:
        with contextlib.closing(sqlite3.connect(f"file:{pathname2url(chosen[0])}?mode=ro", uri=True)) as conn:
            row = conn.execute(sql).fetchone()
    except sqlite3.Error as exc:
        raise SourceError(f"SQLite refused the query: {exc}") from None
    return row[0] if row else None


def _drill_by_verify(d: Drill, kind: Any, snapshot: Snapshot, began: float) -> None:
    """A kind with no scratch instance that restores only into a program or a live server: its
    own verify is all a drill can run (nothing restored, so no RTO) — and the result says so."""
    result = d.result
    result.method = f"the {kind.name} kind's verify only: it has no scratch instance to restore into yet"
    result.notes.append(
        f"not restored: a {kind.name} source has no scratch instance yet, so its verify ran instead and no RTO "
        "was measured"
    )
    if d.drill.queries:
        result.notes.append(f"validation queries are not run for a {kind.name} source (no instance serves them)")
    result.add_phase("plan", time.monotonic() - began)
    verifying = time.monotonic()
    ctx = RestoreContext(loader=d.repo, events=d.events, config=d.config, environment=d.request.environment)
    with read_lock(d.repo, use_lock=True):
        verification = kind.verify(ctx, snapshot)
    result.add_phase("verify", time.monotonic() - verifying)
    result.method += f" ({verification.checked})"
    for problem in verification.problems:
        result.fail(problem)


def _compare_counts(result: DrillResult, snapshot: Snapshot) -> None:
    """A files snapshot restored whole holds the files and bytes its backup recorded."""
    summary = snapshot.summary
    files = sum(int(summary.get(k, 0)) for k in ("files_new", "files_changed", "files_unmodified"))
    size = int(summary.get("bytes_total", 0))
    if summary and result.restored_files != files:
        result.fail(f"restored {result.restored_files} files; the snapshot recorded {files}")
    if summary and result.restored_bytes != size:
        result.fail(f"restored {result.restored_bytes} bytes; the snapshot recorded {size}")
