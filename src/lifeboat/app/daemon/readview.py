"""What the API reads of the daemon (app/api/reads.py's :class:`ReadView`), fast under load.

- **One repository**, opened once (read only) with the passphrase found the way every job
  finds it, shared by every request and the background refreshes; opened again only when the
  configuration names another one. A repository that cannot be opened is retried after
  :data:`OPEN_RETRY` seconds, not at each request (a key derivation costs a quarter second).
- **The health report** (the checks of ``lifeboat health``) is computed in the background:
  a request gets the newest one and, when it is older than :data:`HEALTH_MAX_AGE`, starts a
  refresh on its own thread; only the first requests ever wait for one.
- **Snapshots and records** are listed at most every :data:`LISTING_MAX_AGE` seconds: one
  LIST of the ids, and only new ids fetched (an id is the hash of its object: a record never
  changes under it). While one request refreshes, the others get the previous listing.
- **pg info** of a source is kept :data:`LISTING_MAX_AGE` seconds too.

So a request does a dictionary look-up and a serialization, never a key derivation, a
listing of every object or a connection to PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lifeboat.errors import IntegrityError, LifeboatError, ObjectNotFound

if TYPE_CHECKING:
    from lifeboat.app.daemon.jobs import JobContext
    from lifeboat.app.observability.metrics import JobStat
    from lifeboat.config.model import LifeboatConfig
    from lifeboat.core.records import Record
    from lifeboat.core.snapshot import Snapshot, UnreadableSnapshot
    from lifeboat.operations.browse import Change
    from lifeboat.operations.health import HealthReport
    from lifeboat.operations.pg_info import ClusterInfo
    from lifeboat.repository.repo import Repository

HEALTH_MAX_AGE = 30.0  # seconds: an older report is served while a new one is computed
LISTING_MAX_AGE = 5.0  # seconds between two listings of the snapshots (records, pg info)
OPEN_RETRY = 10.0  # seconds before a repository that could not be opened is tried again
PG_CACHED = 64  # sources whose pg info is kept
FIRST_HEALTH_WAIT = 120.0  # seconds the first request waits for the first report


@dataclass
class _Opened:
    url: str
    repo: Repository | None = None
    error: LifeboatError | None = None
    at: float = 0.0
    index_ids: frozenset[str] = frozenset()


@dataclass
class _Listing:
    """Objects by id from the last listing, and when it was made."""

    by_id: dict[str, Any] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    at: float = -1e9
    ordered: list[Any] = field(default_factory=list)
    guard: threading.Lock = field(default_factory=threading.Lock)


class DaemonReads:
    """The daemon's :class:`~lifeboat.app.api.reads.ReadView`."""

    def __init__(
        self,
        context: Callable[[], JobContext],
        *,
        jobs: Callable[[], list[JobStat]],
        probe: Callable[[Any], Any] | None = None,
        on_health: Callable[[HealthReport], None] | None = None,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self._context = context
        self._jobs = jobs
        self._probe = probe
        self._on_health = on_health
        self._on_error = on_error
        self._open_guard = threading.Lock()
        self._opened: _Opened | None = None
        self._health: HealthReport | None = None
        self._health_at = 0.0
        self._health_guard = threading.Lock()  # held while a report is computed
        self._snapshots = _Listing()
        self._records = _Listing()
        self._pg: dict[str, tuple[float, list[ClusterInfo]]] = {}
        self._pg_guard = threading.Lock()

    # --- the repository ------------------------------------------------------------------------
    def repository(self) -> Repository:
        """The shared repository, opened on first use (raises the LifeboatError that kept it shut)."""
        from lifeboat.app.access import open_repository
        from lifeboat.config.resolve import repository_target
        from lifeboat.errors import UsageError

        context = self._context()
        target = repository_target(context.config, None)
        if target is None:
            raise UsageError("no repository to read", hint="name a default_repository in the configuration file")
        url, repo_config = target
        with self._open_guard:
            opened = self._opened
            if opened is not None and opened.url == url:
                if opened.repo is not None:
                    return opened.repo
                if opened.error is not None and time.monotonic() - opened.at < OPEN_RETRY:
                    raise opened.error
            try:
                repo = open_repository(
                    url, repo_config, context.passphrase(), environment=context.environment, read_only=True
                )
            except LifeboatError as exc:
                self._opened = _Opened(url, None, exc, time.monotonic())
                raise
            self._opened = _Opened(url, repo, None, time.monotonic())
            self._snapshots = _Listing()
            self._records = _Listing()
            with self._pg_guard:
                self._pg.clear()
            return repo

    # --- configuration and jobs ----------------------------------------------------------------
    def config(self) -> LifeboatConfig:
        return self._context().config

    def jobs(self) -> list[JobStat]:
        return self._jobs()

    # --- health --------------------------------------------------------------------------------
    def health(self) -> HealthReport:
        report = self._health
        if report is None:  # the first report: computed by this request (or the one already at it)
            if self._health_guard.acquire(timeout=FIRST_HEALTH_WAIT):
                try:
                    if self._health is None:
                        self._compute_health()
                finally:
                    self._health_guard.release()
            if self._health is None:
                raise LifeboatError("the first health check has not finished yet", hint="ask again in a minute")
            return self._health
        if time.monotonic() - self._health_at > HEALTH_MAX_AGE and not self._health_guard.locked():
            threading.Thread(target=self.refresh_health, name="api-health", daemon=True).start()
        return report

    def refresh_health(self) -> HealthReport | None:
        """Compute a new report now, on the caller's thread (one at a time: a call while one
        runs returns None at once, as does one that fails — the fault goes to the daemon's log)."""
        if not self._health_guard.acquire(blocking=False):
            return None
        try:
            return self._compute_health()
        except Exception as exc:  # noqa: BLE001 - a background refresh never raises; the old report stays
            if self._on_error is not None:
                self._on_error("health check for the API failed", exc)
            return None
        finally:
            self._health_guard.release()

    def _compute_health(self) -> HealthReport:
        from lifeboat.operations.health import HealthRequest, check_health
        from lifeboat.operations.health_records import latest_results

        context = self._context()
        directory = context.state_dir
        request = HealthRequest(
            configs=dict(context.config.sources),
            state_directory=directory,
            probe=self._probe,
            results=lambda repo: latest_results(repo, directory),
        )
        report = check_health(self.repository, request)
        self._health, self._health_at = report, time.monotonic()
        if self._on_health is not None:
            self._on_health(report)
        return report

    # --- listings ------------------------------------------------------------------------------
    def _refresh(self, listing: _Listing, ids: Callable[[], list[str]], load: Callable[[str], Any]) -> _Listing:
        """``listing`` brought up to date when it is older than LISTING_MAX_AGE (by one request;
        the others meanwhile get it as it is)."""
        if time.monotonic() - listing.at < LISTING_MAX_AGE or not listing.guard.acquire(blocking=listing.at < 0):
            return listing
        try:
            if time.monotonic() - listing.at < LISTING_MAX_AGE:  # another request just did it
                return listing
            listed = ids()
            missing = [i for i in listed if i not in listing.by_id and i not in listing.unreadable]

            def fetch(object_id: str) -> Any:
                try:
                    return load(object_id)
                except ObjectNotFound:
                    return None  # removed since listed
                except IntegrityError as exc:
                    return exc.message

            from lifeboat.repository.repo import READ_PARALLELISM

            with ThreadPoolExecutor(max_workers=READ_PARALLELISM) as pool:
                fetched = list(zip(missing, pool.map(fetch, missing), strict=True))
            keep = set(listed)
            by_id = {i: o for i, o in listing.by_id.items() if i in keep}
            unreadable = {i: p for i, p in listing.unreadable.items() if i in keep}
            for object_id, outcome in fetched:
                if isinstance(outcome, str):
                    unreadable[object_id] = outcome
                elif outcome is not None:
                    by_id[object_id] = outcome
            listing.by_id, listing.unreadable = by_id, unreadable
            listing.ordered = sorted(by_id.values(), key=lambda o: (o.time, o.id))
            listing.at = time.monotonic()
            return listing
        finally:
            listing.guard.release()

    def snapshots(self) -> tuple[Sequence[Snapshot], Sequence[UnreadableSnapshot]]:
        from lifeboat.core.snapshot import UnreadableSnapshot

        repo = self.repository()
        listing = self._refresh(self._snapshots, repo.snapshot_ids, repo.load_snapshot)
        damaged = [UnreadableSnapshot(i, p) for i, p in sorted(listing.unreadable.items())]
        return list(listing.ordered), damaged

    def records(self) -> Sequence[Record]:
        repo = self.repository()
        listing = self._refresh(self._records, repo.record_ids, repo.load_record)
        return list(reversed(listing.ordered))

    # --- reading trees and WAL -------------------------------------------------------------------
    def diff(self, old: Snapshot, new: Snapshot) -> list[Change]:
        from lifeboat.operations.browse import diff_trees

        repo = self.repository()
        self._fresh_index(repo)
        return list(diff_trees(repo, old.tree, new.tree))

    def _fresh_index(self, repo: Repository) -> None:
        """Forget the blob index the shared repository loaded when backups have added index
        files since (a new snapshot's trees are in them)."""
        ids = frozenset(repo.index_ids())
        with self._open_guard:
            opened = self._opened
            if opened is not None and opened.repo is repo and opened.index_ids != ids:
                repo.forget_index()
                opened.index_ids = ids

    def postgres(self, source: str) -> list[ClusterInfo]:
        from lifeboat.operations.pg_info import pg_info

        with self._pg_guard:
            cached = self._pg.get(source)
        if cached is not None and time.monotonic() - cached[0] < LISTING_MAX_AGE:
            return cached[1]
        repo = self.repository()
        snapshots, _ = self.snapshots()
        config = self.config()
        clusters = pg_info(
            repo, source=source, retention=config.retention_for, now=repo.clock(), snapshots=list(snapshots)
        )
        with self._pg_guard:
            if len(self._pg) >= PG_CACHED:  # names asked for that hold nothing must not pile up
                self._pg.clear()
            self._pg[source] = (time.monotonic(), clusters)
        return clusters

    # --- the audit log ---------------------------------------------------------------------------
    def audit_entries(self) -> list[dict[str, Any]]:
        from lifeboat.app.observability.audit import AuditLog, audit_path

        context = self._context()
        return AuditLog(audit_path(context.config, context.state_dir)).entries()


__all__ = ["DaemonReads"]
