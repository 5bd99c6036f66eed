"""The job catalog in PostgreSQL: the shared contract on a real cluster, several hosts on one
database, migrations racing, credentials the libpq ways, and messages that never show a password."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat.app.daemon.catalog import Catalog, CatalogUnavailable, open_catalog
from lifeboat.app.daemon.catalog_schema import LATEST
from lifeboat.errors import ConfigError, ExitCode
from lifeboat.sources.tools.pgcluster import ScratchCluster, free_port
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
from tests.postgres.conftest import WorldFactory, wait_until

__all__ = [  # the contract, collected here against PostgreSQL
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

ROLE = "lifeboat_catalog"
PASSWORD = "c4talog-Pass:w0rd/with@signs"  # URL-special characters, percent-encoded in URLs
URL_PASSWORD = PASSWORD.replace(":", "%3A").replace("/", "%2F").replace("@", "%40")


@dataclass
class CatalogServer:
    """A cluster where the role ROLE logs in over TCP with a password (scram-sha-256)."""

    cluster: ScratchCluster

    @property
    def port(self) -> int:
        return self.cluster.port

    def new_database(self) -> str:
        name = f"catalog_{uuid.uuid4().hex[:12]}"
        self.cluster.psql(f"CREATE DATABASE {name} OWNER {ROLE}")
        return name

    def url(self, database: str, *, password: str | None = URL_PASSWORD, scheme: str = "postgresql") -> str:
        secret = f":{password}" if password is not None else ""
        return f"{scheme}://{ROLE}{secret}@127.0.0.1:{self.port}/{database}"

    def location(self, database: str) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
def server(worlds: WorldFactory) -> CatalogServer:
    cluster = worlds().cluster
    cluster.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
    hba = cluster.data_dir / "pg_hba.conf"
    hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())  # first match wins
    assert cluster.psql("SELECT pg_reload_conf()") == "t"
    return CatalogServer(cluster)


@pytest.fixture
def store(server: CatalogServer, tmp_path: Path) -> Store:
    return Store(server.url(server.new_database()), str(tmp_path))


def test_the_catalog_uses_timestamptz_and_jsonb_and_reads_with_plain_sql(server: CatalogServer, store: Store) -> None:
    with store.open("alpha") as catalog:
        run_id = start(catalog)
        catalog.finish_run(run_id, status="succeeded", finished=T0, bytes_added=42, summary={"files": 3})
    database = store.url.rsplit("/", 1)[1] if store.url else ""
    types = server.cluster.psql(
        "SELECT column_name || ' ' || data_type FROM information_schema.columns "
        "WHERE table_name = 'lifeboat_runs' AND column_name IN ('started', 'finished', 'summary') ORDER BY 1",
        dbname=database,
    )
    assert types.splitlines() == [
        "finished timestamp with time zone",
        "started timestamp with time zone",
        "summary jsonb",
    ]
    # the example of docs/catalog.md
    answer = server.cluster.psql(
        "SET TIME ZONE 'UTC'; SELECT host, job, status, started, bytes_added, summary->>'files' FROM lifeboat_runs "
        "WHERE job = 'backup:db' ORDER BY started DESC LIMIT 20",
        dbname=database,
    )
    assert answer == "alpha|backup:db|succeeded|2026-03-29 00:30:00+00|42|3"


def test_two_daemons_starting_at_once_migrate_the_new_database_once(server: CatalogServer, tmp_path: Path) -> None:
    url = server.url(server.new_database())
    hosts = [f"host{n}" for n in range(4)]
    gate = threading.Barrier(len(hosts))
    opened: list[Catalog] = []
    failures: list[BaseException] = []

    def daemon(host: str) -> None:
        try:
            gate.wait()
            catalog = open_catalog(url, state_dir=str(tmp_path), host=host)
            opened.append(catalog)
            start(catalog, f"backup:{host}")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=daemon, args=(host,)) for host in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    try:
        for catalog in opened:
            assert sorted(run.host for run in catalog.runs()) == hosts
            assert catalog.hosts() == hosts
    finally:
        for catalog in opened:
            catalog.close()
    versions = server.cluster.psql("SELECT version FROM lifeboat_catalog_schema ORDER BY 1", dbname=url.rsplit("/")[-1])
    assert versions.splitlines() == [str(v) for v in range(1, LATEST + 1)]


def test_a_wrong_password_is_refused_and_never_shown(server: CatalogServer, tmp_path: Path) -> None:
    database = server.new_database()
    wrong = "Wr0ng-S3cret-in-the-URL"
    with pytest.raises(CatalogUnavailable) as refused:
        open_catalog(server.url(database, password=wrong), state_dir=str(tmp_path), host="alpha")
    error = refused.value
    shown = " ".join([str(error), error.message, error.hint, repr(error), *map(str, error.args)])
    assert wrong not in shown and URL_PASSWORD not in shown
    assert error.message.startswith(f"cannot connect to the job catalog {server.location(database)}: ")
    assert f'password authentication failed for user "{ROLE}"' in error.message
    assert "\n" not in error.message
    assert "PGPASSFILE" in error.hint
    assert error.exit_code == ExitCode.ERROR
    assert error.__cause__ is None and error.__suppress_context__  # the driver's exception is not shown either


def test_an_unparsable_url_is_refused_without_showing_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        open_catalog("postgresql://admin:S3cret@db.example/jobs?sslmod=require", state_dir=str(tmp_path), host="alpha")
    assert "S3cret" not in str(refused.value) + refused.value.hint
    assert "admin" not in str(refused.value)
    assert refused.value.message == "daemon.catalog: postgresql://db.example/… is not a valid PostgreSQL URL"


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(CatalogUnavailable) as refused:
        open_catalog(f"postgres://{ROLE}:{URL_PASSWORD}@127.0.0.1:{port}/jobs", state_dir=str(tmp_path), host="a")
    assert refused.value.message.startswith(
        f"cannot connect to the job catalog postgresql://{ROLE}@127.0.0.1:{port}/jobs: "
    )
    assert "Connection refused" in refused.value.message
    assert URL_PASSWORD not in str(refused.value) and PASSWORD not in str(refused.value)


def test_the_password_can_come_from_a_passfile_and_the_host_from_a_service(
    server: CatalogServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = server.new_database()
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{server.port}:{database}:{ROLE}:{PASSWORD.replace(':', chr(92) + ':')}\n")
    passfile.chmod(0o600)
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[lifeboat]\nhost=127.0.0.1\nport={server.port}\ndbname={database}\nuser={ROLE}\n")
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    with open_catalog(server.url(database, password=None), state_dir=str(tmp_path), host="alpha") as catalog:
        start(catalog)
    with open_catalog("postgresql:///?service=lifeboat", state_dir=str(tmp_path), host="beta") as catalog:
        assert [run.host for run in catalog.runs()] == ["alpha"]
        assert catalog.location == "postgresql:///?service=lifeboat"


def test_a_connection_the_server_dropped_is_reopened(server: CatalogServer, store: Store) -> None:
    database = (store.url or "").rsplit("/", 1)[1]
    with store.open("alpha") as catalog:
        first = start(catalog)

        def backends() -> int:
            return int(
                server.cluster.psql(
                    f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' "
                    "AND application_name = 'lifeboat-daemon'"
                )
            )

        assert backends() == 1
        server.cluster.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND application_name = 'lifeboat-daemon'"
        )
        wait_until(lambda: backends() == 0, what="the catalog's backend gone")
        second = start(catalog, "verify:db")
        assert {run.id for run in catalog.runs()} == {first, second}


def test_a_server_that_stays_down_is_reported_after_one_reconnect(worlds: WorldFactory, tmp_path: Path) -> None:
    cluster = worlds().cluster
    url = f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    with open_catalog(url, state_dir=str(tmp_path), host="alpha") as catalog:
        start(catalog)
        cluster.stop("immediate")
        try:
            with pytest.raises(CatalogUnavailable) as failed:
                catalog.runs()
            assert failed.value.message.startswith(
                f"cannot connect to the job catalog postgresql://postgres@127.0.0.1:{cluster.port}/postgres: "
            )
        finally:
            cluster.start()
        assert len(catalog.runs()) == 1  # and it works again once the server is back
