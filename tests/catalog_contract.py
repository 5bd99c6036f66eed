"""What every back end of the job catalog promises (SQLite and PostgreSQL run the same tests).

A test module imports these functions (pytest collects them there) and provides the fixture
``store``: a fresh, empty catalog location (:class:`Store`) for each test.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from lifeboat.app.daemon.catalog import (
    INTERRUPTED_ERROR,
    MAX_MESSAGE_CHARS,
    Catalog,
    CatalogError,
    CatalogTooNew,
    catalog_database,
    open_catalog,
)
from lifeboat.app.daemon.catalog_db import Cursor, Database
from lifeboat.app.daemon.catalog_schema import LATEST, MIGRATIONS, Migration, migrate, schema_version
from lifeboat.errors import ExitCode

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
BERLIN_SUMMER = timezone(timedelta(hours=2))


@dataclass
class Store:
    """Where a test's catalog is: ``url`` as ``daemon.catalog`` would say it."""

    url: str | None
    state_dir: str

    def open(self, host: str, **options: Any) -> Catalog:
        return open_catalog(self.url, state_dir=self.state_dir, host=host, **options)

    def database(self) -> Database:
        """The database, neither migrated nor wrapped in a Catalog."""
        return catalog_database(self.url, state_dir=self.state_dir)

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        database = self.database()
        try:
            return database.transaction(lambda cursor: cursor.rows(statement, params))
        finally:
            database.close()


def start(catalog: Catalog, job: str = "backup:db", *, at: datetime = T0, trigger: str = "schedule") -> str:
    kind, _, target = job.partition(":")
    return catalog.start_run(job=job, kind=kind, target=target, trigger=trigger, attempt=1, started=at).id


def test_a_run_round_trips_with_its_times_in_utc(store: Store) -> None:
    with store.open("alpha") as catalog:
        started = datetime(2026, 7, 1, 4, 0, 0, 123456, tzinfo=BERLIN_SUMMER)  # 02:00:00.123456 UTC
        run = catalog.start_run(
            job="backup:db", kind="backup", target="db", trigger="retry", attempt=2, started=started
        )
        assert run.status == "running" and run.finished is None and run.host == "alpha"
        assert catalog.run(run.id) == run
        catalog.finish_run(
            run.id, status="failed", finished=started + timedelta(minutes=3), exit_code=14,
            error="storage unreachable", bytes_read=10**12, bytes_added=5,
            summary={"snapshot": None, "files": 3, "nested": {"ratio": 0.5}, "when": T0},
        )  # fmt: skip
    with store.open("beta") as reader:
        got = reader.run(run.id)
    assert got is not None
    assert got.started == datetime(2026, 7, 1, 2, 0, 0, 123456, tzinfo=UTC)
    assert got.started.utcoffset() == timedelta(0)
    assert got.finished == datetime(2026, 7, 1, 2, 3, 0, 123456, tzinfo=UTC)
    assert (got.host, got.job, got.kind, got.target, got.trigger, got.attempt) == (
        "alpha", "backup:db", "backup", "db", "retry", 2,
    )  # fmt: skip
    assert (got.status, got.exit_code, got.error) == ("failed", 14, "storage unreachable")
    assert (got.bytes_read, got.bytes_added) == (10**12, 5)
    assert got.summary == {"snapshot": None, "files": 3, "nested": {"ratio": 0.5}, "when": str(T0)}


def test_every_host_writes_its_own_runs_and_reads_all_newest_first(store: Store) -> None:
    alpha, beta = store.open("alpha"), store.open("beta")
    try:
        ids = {}
        for minute, (catalog, job) in enumerate(
            [(alpha, "backup:db"), (beta, "backup:db"), (alpha, "verify:db"), (beta, "check:main")]
        ):
            ids[(catalog.host, job)] = start(catalog, job, at=T0 + timedelta(minutes=minute))
        alpha.finish_run(ids[("alpha", "backup:db")], status="succeeded", finished=T0 + timedelta(minutes=30))
        for catalog in (alpha, beta):
            seen = [(run.host, run.job) for run in catalog.runs()]
            assert seen == [
                ("beta", "check:main"),
                ("alpha", "verify:db"),
                ("beta", "backup:db"),
                ("alpha", "backup:db"),
            ]
            assert catalog.hosts() == ["alpha", "beta"]
        assert [r.host for r in beta.runs(job="backup:db")] == ["beta", "alpha"]
        assert [r.job for r in beta.runs(host="alpha")] == ["verify:db", "backup:db"]
        assert [r.job for r in beta.runs(status="succeeded")] == ["backup:db"]
        assert [r.job for r in beta.runs(since=T0 + timedelta(minutes=2))] == ["check:main", "verify:db"]
        assert [r.job for r in beta.runs(limit=1)] == ["check:main"]
        assert len(beta.runs(limit=None)) == 4
        assert beta.run("no-such-run") is None
    finally:
        alpha.close()
        beta.close()


def test_job_threads_write_at_once_and_nothing_is_lost(store: Store) -> None:
    threads_n, runs_n, events_n = 6, 15, 8
    with store.open("alpha") as catalog:
        failures: list[BaseException] = []
        gate = threading.Barrier(threads_n)

        def job(number: int) -> None:
            try:
                gate.wait()
                for i in range(runs_n):
                    run_id = start(catalog, f"backup:db{number}", at=T0 + timedelta(seconds=i))
                    for line in range(events_n):
                        catalog.add_event(run_id, at=T0, level="info", message=f"{number}/{i}/{line}")
                    catalog.finish_run(run_id, status="succeeded", finished=T0 + timedelta(seconds=i, milliseconds=1))
                    catalog.set_last_fire(f"backup:db{number}", T0 + timedelta(seconds=i))
            except BaseException as exc:
                failures.append(exc)

        workers = [threading.Thread(target=job, args=(n,)) for n in range(threads_n)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        assert not failures, failures
        runs = catalog.runs(limit=None)
        assert len(runs) == threads_n * runs_n
        assert {run.status for run in runs} == {"succeeded"}
        for run in runs:
            writer = run.job.removeprefix("backup:db")
            messages = [event.message for event in catalog.events(run.id)]
            assert len(messages) == events_n and all(m.startswith(f"{writer}/") for m in messages)
            assert [m.rsplit("/", 1)[1] for m in messages] == [str(line) for line in range(events_n)]
        for number in range(threads_n):
            assert catalog.last_fire(f"backup:db{number}") == T0 + timedelta(seconds=runs_n - 1)


def test_interrupt_unfinished_marks_only_this_hosts_running_runs(store: Store) -> None:
    alpha, beta = store.open("alpha"), store.open("beta")
    try:
        left = start(alpha, "backup:db")
        done = start(alpha, "verify:db")
        alpha.finish_run(done, status="succeeded", finished=T0 + timedelta(minutes=1))
        theirs = start(beta, "backup:db")
        restarted = T0 + timedelta(hours=1)
        marked = alpha.interrupt_unfinished(finished=restarted)
        assert [(r.id, r.status, r.finished, r.error) for r in marked] == [
            (left, "interrupted", restarted, INTERRUPTED_ERROR)
        ]
        assert alpha.run(left) == marked[0]
        assert beta.run(theirs) is not None and beta.run(theirs).status == "running"  # type: ignore[union-attr]
        assert alpha.run(done).status == "succeeded"  # type: ignore[union-attr]
        assert alpha.interrupt_unfinished(finished=restarted) == []
    finally:
        alpha.close()
        beta.close()


def test_the_last_fire_time_is_per_host_and_job(store: Store) -> None:
    alpha, beta = store.open("alpha"), store.open("beta")
    try:
        assert alpha.last_fire("backup:db") is None
        alpha.set_last_fire("backup:db", T0)
        alpha.set_last_fire("backup:db", T0 + timedelta(days=1))
        beta.set_last_fire("backup:db", T0 - timedelta(days=7))
        assert alpha.last_fire("backup:db") == T0 + timedelta(days=1)
        assert beta.last_fire("backup:db") == T0 - timedelta(days=7)
        assert alpha.last_fire("verify:db") is None
    finally:
        alpha.close()
        beta.close()


def test_a_chatty_run_keeps_its_newest_events_and_says_how_many_were_dropped(store: Store) -> None:
    with store.open("alpha", max_events_per_run=5) as catalog:
        run_id = start(catalog)
        other = start(catalog, "verify:db")
        for line in range(12):
            catalog.add_event(run_id, at=T0 + timedelta(seconds=line), level="info", message=f"line {line}")
        catalog.add_event(other, at=T0, level="error", message="x" * (MAX_MESSAGE_CHARS + 500))
        events = catalog.events(run_id)
        assert [e.message for e in events[1:]] == [f"line {n}" for n in range(7, 12)]
        assert events[0].level == "warning"
        assert events[0].message.startswith("7 earlier events of this run were dropped")
        assert events[1].at == T0 + timedelta(seconds=7)
        stored = store.sql("SELECT count(*) FROM lifeboat_events WHERE run_id = ?", (run_id,))
        assert stored[0][0] == 5
        (long,) = catalog.events(other)
        assert len(long.message) == MAX_MESSAGE_CHARS and long.message.endswith("…")


def test_prune_history_removes_this_hosts_old_finished_runs_and_their_events(store: Store) -> None:
    alpha, beta = store.open("alpha"), store.open("beta")
    try:
        old = start(alpha, at=T0)
        alpha.add_event(old, at=T0, level="info", message="old")
        alpha.finish_run(old, status="succeeded", finished=T0 + timedelta(minutes=1))
        stuck = start(alpha, "verify:db", at=T0)  # still running: never pruned
        recent = start(alpha, at=T0 + timedelta(days=40))
        theirs = start(beta, at=T0)
        beta.finish_run(theirs, status="failed", finished=T0 + timedelta(minutes=1))
        assert alpha.prune_history(T0 + timedelta(days=30)) == 1
        assert {r.id for r in alpha.runs()} == {stuck, recent, theirs}
        assert store.sql("SELECT count(*) FROM lifeboat_events WHERE run_id = ?", (old,))[0][0] == 0
        assert alpha.prune_history(T0 + timedelta(days=30), all_hosts=True) == 1
        assert {r.id for r in beta.runs()} == {stuck, recent}
    finally:
        alpha.close()
        beta.close()


def test_wrong_calls_are_refused_before_anything_is_written(store: Store) -> None:
    with store.open("alpha") as catalog:
        with pytest.raises(ValueError, match="naive datetime"):
            catalog.start_run(job="backup:db", kind="backup", target="db", trigger="schedule", attempt=1,
                              started=datetime(2026, 1, 1))  # fmt: skip
        with pytest.raises(ValueError, match="unknown trigger"):
            catalog.start_run(job="backup:db", kind="backup", target="db", trigger="cron", attempt=1, started=T0)
        run_id = start(catalog)
        with pytest.raises(ValueError, match="cannot finish as 'running'"):
            catalog.finish_run(run_id, status="running", finished=T0)
        with pytest.raises(KeyError, match="no run nope"):
            catalog.finish_run("nope", status="succeeded", finished=T0)
        with pytest.raises(CatalogError, match="refused an operation"):  # an event belongs to a run
            catalog.add_event("nope", at=T0, level="info", message="orphan")
        assert catalog.events("nope") == []
        assert [r.id for r in catalog.runs()] == [run_id]


def test_a_version_1_catalog_is_upgraded_on_open_and_keeps_its_history(store: Store) -> None:
    database = store.database()
    try:
        assert migrate(database, upto=1) == [1]
        assert schema_version(database) == 1

        def index(cursor: Cursor) -> bool:
            return database.index_exists(cursor, "lifeboat_runs_started")

        assert not database.transaction(index)
        database.transaction(
            lambda cursor: cursor.execute(
                "INSERT INTO lifeboat_runs (id, host, job, kind, target, trigger, attempt, started, status, summary) "
                "VALUES ('r1', 'alpha', 'backup:db', 'backup', 'db', 'schedule', 1, ?, 'succeeded', ?)",
                (database.store_time(T0), database.store_json({"v": 1})),
            )
        )
    finally:
        database.close()
    with store.open("alpha") as catalog:
        run = catalog.run("r1")
        assert run is not None and run.started == T0 and run.summary == {"v": 1}
    versions = store.sql("SELECT version, program FROM lifeboat_catalog_schema ORDER BY version")
    assert [v for v, _ in versions] == list(range(1, LATEST + 1)) and LATEST >= 2
    assert all(program.startswith("lifeboat ") for _, program in versions)
    database = store.database()
    try:
        assert database.transaction(index)
        assert migrate(database) == []  # nothing left to do
    finally:
        database.close()


def test_a_migration_that_fails_leaves_the_catalog_as_it_was(store: Store) -> None:
    database = store.database()
    try:
        migrate(database, upto=1)
        broken = (
            *MIGRATIONS,
            Migration(LATEST + 1, "a step that fails half-way", (
                "CREATE INDEX lifeboat_runs_kind ON lifeboat_runs (kind)",
                "CREATE INDEX lifeboat_runs_nonsense ON lifeboat_runs (no_such_column)",
            )),
        )  # fmt: skip
        with pytest.raises(CatalogError, match="refused an operation"):
            migrate(database, migrations=broken)
        assert schema_version(database) == 1

        def indexes(cursor: Cursor) -> list[bool]:
            return [database.index_exists(cursor, name) for name in ("lifeboat_runs_started", "lifeboat_runs_kind")]

        assert database.transaction(indexes) == [False, False]
    finally:
        database.close()
    with store.open("alpha") as catalog:  # and this program's steps still apply
        assert catalog.runs() == []
    assert [v for (v,) in store.sql("SELECT version FROM lifeboat_catalog_schema ORDER BY version")] == [
        *range(1, LATEST + 1)
    ]


def test_a_catalog_newer_than_this_program_is_refused_untouched(store: Store) -> None:
    store.open("alpha").close()
    store.sql(
        "INSERT INTO lifeboat_catalog_schema (version, applied, program) VALUES (?, ?, 'lifeboat 99')",
        (LATEST + 1, _stored_time(store, T0)),
    )
    with pytest.raises(CatalogTooNew) as refused:
        store.open("alpha")
    assert refused.value.exit_code == ExitCode.INTEGRITY
    assert f"has schema version {LATEST + 1}" in refused.value.message
    assert f"knows versions up to {LATEST}" in refused.value.message
    assert "upgrade lifeboat" in refused.value.hint
    secret = urlsplit(store.url or "").password
    assert not secret or (secret not in refused.value.message and unquote(secret) not in refused.value.message)
    assert [v for (v,) in store.sql("SELECT version FROM lifeboat_catalog_schema ORDER BY version")] == [
        *range(1, LATEST + 1), LATEST + 1,
    ]  # fmt: skip


DOCS = Path(__file__).resolve().parents[1] / "docs" / "catalog.md"


def doc_statements(dialect: str) -> list[str]:
    """The SQL statements of docs/catalog.md that read or prune a catalog of ``dialect``."""
    blocks = re.findall(r"```sql\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL)
    other = ("json_extract",) if dialect == "postgresql" else ("SET TIME ZONE", "->>")
    statements = []
    for block in blocks:
        if "CREATE ROLE" in block or any(word in block for word in other):
            continue
        text = "\n".join(line.split("--")[0] for line in block.splitlines())
        statements += [part.strip() for part in text.split(";") if part.strip()]
    return statements


def test_the_queries_of_the_documentation_answer(store: Store) -> None:
    with store.open("old-host") as old, store.open("web1") as web:
        gone = start(old, at=T0)
        old.add_event(gone, at=T0, level="info", message="x")
        old.set_last_fire("backup:db", T0)
        ok = start(web, at=datetime(2026, 11, 29, 2, tzinfo=UTC))
        web.finish_run(ok, status="succeeded", finished=T0, bytes_added=42, summary={"files": 3})
        failed = start(web, "verify:db", at=datetime(2026, 11, 29, 3, tzinfo=UTC))
        web.add_event(failed, at=T0, level="info", message="first")
        web.add_event(failed, at=T0, level="error", message="the last line")
        web.finish_run(failed, status="failed", finished=T0, exit_code=13, error="damaged")
    database = store.database()
    dialect = database.dialect
    database.close()
    statements = sorted(doc_statements(dialect), key=lambda statement: statement.startswith("DELETE"))
    assert len(statements) == 6 if dialect == "postgresql" else 5
    answers = [store.sql(statement) for statement in statements]
    selects = [answer for statement, answer in zip(statements, answers, strict=True) if statement.startswith("SELECT")]
    newest, failures = selects
    assert [(row[0], row[1], row[2], row[4], str(row[5])) for row in newest] == [
        ("web1", "backup:db", "succeeded", 42, "3"),
        ("old-host", "backup:db", "running", None, "None"),
    ]
    assert [(row[0], row[1], row[3], row[4], row[5]) for row in failures] == [
        ("web1", "verify:db", 13, "damaged", "the last line")
    ]
    with store.open("web1") as catalog:  # the DELETEs removed the old host's history
        assert catalog.hosts() == ["web1"]


def _stored_time(store: Store, moment: datetime) -> Any:
    database = store.database()
    try:
        return database.store_time(moment)
    finally:
        database.close()


CONTRACT: tuple[Callable[[Store], None], ...] = (
    test_a_run_round_trips_with_its_times_in_utc,
    test_every_host_writes_its_own_runs_and_reads_all_newest_first,
    test_job_threads_write_at_once_and_nothing_is_lost,
    test_interrupt_unfinished_marks_only_this_hosts_running_runs,
    test_the_last_fire_time_is_per_host_and_job,
    test_a_chatty_run_keeps_its_newest_events_and_says_how_many_were_dropped,
    test_prune_history_removes_this_hosts_old_finished_runs_and_their_events,
    test_wrong_calls_are_refused_before_anything_is_written,
    test_a_version_1_catalog_is_upgraded_on_open_and_keeps_its_history,
    test_a_migration_that_fails_leaves_the_catalog_as_it_was,
    test_a_catalog_newer_than_this_program_is_refused_untouched,
    test_the_queries_of_the_documentation_answer,
)


def test_a_run_given_its_id_keeps_it_and_its_events_are_numbered(store: Store) -> None:
    with store.open("alpha") as catalog:
        run = catalog.start_run(job="drill:db", kind="drill", target="db", trigger="api", attempt=1, started=T0,
                                run_id="0b5d6c1e-api-asked")  # fmt: skip
        assert run.id == "0b5d6c1e-api-asked"
        found = catalog.run("0b5d6c1e-api-asked")
        assert found is not None and found.trigger == "api"
        seqs = [catalog.add_event(run.id, at=T0, level="info", message=f"line {n}") for n in range(3)]
        assert seqs == [1, 2, 3]
        assert [(event.seq, event.message) for event in catalog.events(run.id)] == [
            (1, "line 0"), (2, "line 1"), (3, "line 2"),
        ]  # fmt: skip
