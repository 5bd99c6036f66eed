"""``pg check`` and ``pg setup``: is the server set up to archive into this repository, and
does a WAL file really get there?

The check verifies the settings (``wal_level``, ``archive_mode``, ``archive_command``,
``archive_timeout``), the archiver's recent failures, the repository as the server's OS
user sees it (the data directory's owner, who runs ``archive_command``: every file it
cannot read or write is named with its owner and mode), and makes a round trip: it writes
a WAL record, switches to a new segment, and waits until that segment is in the
repository — or until ``wal-push`` fails on it, whose error it reports. Setup computes the
settings that are missing and can apply them with ``ALTER SYSTEM`` (``wal_level`` and
``archive_mode`` then need a restart).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lifeboat.errors import LifeboatError, PostgresError
from lifeboat.operations.repo_access import AccessReport
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive
from lifeboat.sources.postgres.archive_wait import WATCH_EVERY, ArchiverWatch
from lifeboat.sources.postgres.server import PgServer, ServerInfo
from lifeboat.sources.tools.pg import Connection
from lifeboat.storage.ownership import user_name

RESTART_SETTINGS = ("wal_level", "archive_mode")


@dataclass
class CheckItem:
    name: str
    ok: bool
    detail: str
    hint: str = ""
    warning: bool = False  # worth knowing, but archiving works

    def to_json(self) -> dict[str, Any]:
        status = "ok" if self.ok else ("warning" if self.warning else "failed")
        return {"check": self.name, "status": status, "detail": self.detail, "hint": self.hint}


@dataclass
class CheckReport:
    items: list[CheckItem] = field(default_factory=list)
    system_id: str = ""
    version: str = ""
    round_trip_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return all(i.ok or i.warning for i in self.items)

    def add(self, name: str, ok: bool, detail: str, hint: str = "", *, warning: bool = False) -> None:
        self.items.append(CheckItem(name, ok, detail, hint, warning and not ok))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "system_id": self.system_id,
            "version": self.version,
            "round_trip_seconds": None if self.round_trip_seconds is None else round(self.round_trip_seconds, 3),
            "checks": [i.to_json() for i in self.items],
        }


def _settings(server: PgServer) -> dict[str, str]:
    names = ("wal_level", "archive_mode", "archive_command", "archive_timeout", "max_wal_senders", "archive_library")
    rows = server.rows("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(names),))
    return {str(name): str(setting) + (str(unit) if unit and unit != "8kB" else "") for name, setting, unit in rows}


def check_postgres(
    connection: Connection,
    open_repository: Callable[[], Repository],
    *,
    round_trip: bool = True,
    timeout: float = 60.0,
    probe_as: Callable[[str], AccessReport] | None = None,
) -> CheckReport:
    """Check the server's archiving into the repository ``open_repository`` opens.

    ``probe_as(user)`` tests the repository as the OS user ``user`` (``lifeboat pg access``
    run as that user); without it that check is left out.
    """
    report = CheckReport()
    try:
        server = PgServer.connect(connection, application_name="lifeboat check")
    except LifeboatError as exc:
        report.add("connection", False, exc.message, exc.hint)
        return report
    with server:
        info: ServerInfo = server.info()
        report.system_id, report.version = info.system_id, info.version
        report.add("connection", True, f"PostgreSQL {info.version}, system {info.system_id}, user {info.user}")
        report.add(
            "role",
            not info.in_recovery,
            "primary" if not info.in_recovery else "standby (in recovery)",
            "run the check against the primary",
            warning=True,
        )
        settings = _settings(server)
        level = settings.get("wal_level", "")
        report.add("wal_level", level in ("replica", "logical"), level, "wal_level = replica (needs a restart)")
        mode = settings.get("archive_mode", "")
        report.add("archive_mode", mode in ("on", "always"), mode, "archive_mode = on (needs a restart)")
        command = settings.get("archive_command", "")
        library = settings.get("archive_library", "")
        uses_lifeboat = "wal-push" in command and not library
        report.add(
            "archive_command",
            uses_lifeboat,
            command or "(empty)",
            "archive_command = 'lifeboat ... wal-push %p' ('lifeboat pg setup' prints it)"
            + ("; archive_library is set and overrides archive_command" if library else ""),
        )
        timeout_setting = settings.get("archive_timeout", "0")
        report.add(
            "archive_timeout",
            timeout_setting not in ("0", "0s"),
            timeout_setting,
            "set archive_timeout (e.g. 60s): without it a quiet server's last commits wait in an unfinished segment",
            warning=True,
        )
        report.add(
            "data_checksums",
            info.data_checksums,
            "on" if info.data_checksums else "off",
            "page checksums let backups detect damaged pages (initdb --data-checksums / pg_checksums --enable)",
            warning=True,
        )
        stats = server.archiver()
        failing = bool(
            stats["failed_count"]
            and stats["last_failed_time"]
            and (stats["last_archived_time"] is None or stats["last_failed_time"] > stats["last_archived_time"])
        )
        report.add(
            "archiver",
            not failing,
            f"{stats['archived_count']} archived, {stats['failed_count']} failed"
            + (f"; last failure {stats['last_failed_wal']} at {stats['last_failed_time']}" if failing else ""),
            "archiving is failing: the server log has wal-push's error messages",
        )
        try:
            repo = open_repository()
        except LifeboatError as exc:
            report.add("repository", False, exc.message, exc.hint)
            return report
        report.add("repository", True, repo.backend.location)
        if probe_as is not None:
            _check_server_user(report, info, probe_as)
        if not round_trip:
            return report
        if info.in_recovery or not (uses_lifeboat and mode in ("on", "always")):
            report.add("round trip", False, "skipped: archiving is not set up", "fix the failed checks above first")
            return report
        archive = WalArchive(repo, info.system_id)
        try:
            watch: ArchiverWatch | None = ArchiverWatch(server, info.data_directory)
        except PostgresError:
            watch = None
        started = time.monotonic()
        next_look = started
        name = server.switch_wal()
        while not archive.exists(name):
            now = time.monotonic()
            failed = watch.check() if watch is not None and now >= next_look else None
            next_look = now + WATCH_EVERY if now >= next_look else next_look
            if failed is not None:
                report.add("round trip", False, failed.message, failed.hint)
                return report
            if now - started > timeout:
                seen = watch.seen if watch is not None else None
                report.add(
                    "round trip",
                    False,
                    f"{name} did not reach the repository within {timeout:.0f}s"
                    + (f": {seen.message}" if seen is not None else ""),
                    seen.hint
                    if seen is not None
                    else "check the server log for wal-push errors; is archive_command archiving into this repository?",
                )
                return report
            time.sleep(0.1)
        report.round_trip_seconds = time.monotonic() - started
        report.add("round trip", True, f"{name} archived in {report.round_trip_seconds:.2f}s")
    return report


def _check_server_user(report: CheckReport, info: ServerInfo, probe_as: Callable[[str], AccessReport]) -> None:
    """Test the repository as the data directory's owner, the user that runs archive_command."""
    try:
        uid = os.stat(info.data_directory).st_uid
    except OSError:
        report.add(
            "server user",
            False,
            f"the data directory {info.data_directory} is not on this host (or not visible to this user)",
            "run 'lifeboat pg access' as the server's OS user on the database host",
            warning=True,
        )
        return
    user = user_name(uid)
    if os.geteuid() not in (0, uid):
        report.add(
            "server user",
            False,
            f"not tested: archive_command runs as {user}",
            f"run pg check as root or as {user}, or run 'lifeboat pg access' as {user}",
            warning=True,
        )
        return
    try:
        access = probe_as(user)
    except LifeboatError as exc:
        report.add("server user", False, exc.message, exc.hint)
        return
    if access.ok:
        checked = f" ({access.checked} files and directories)" if access.checked else ""
        report.add("server user", True, f"{user} can read and write {access.location}{checked}")
        return
    hint = access.error.hint if access.error is not None and not access.problems else ""
    if access.problems:
        hint = (
            f"archive_command runs as {user}: 'chown -R {user}: {access.location}' (as root) gives the repository "
            "back to it (docs/postgres.md, 'Who owns the repository')"
        )
    report.add("server user", False, f"{user} (archive_command's user): {access.summary()}", hint)


@dataclass
class SetupPlan:
    changes: dict[str, str]
    current: dict[str, str]
    applied: bool = False
    restart_needed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": self.changes,
            "current": self.current,
            "applied": self.applied,
            "restart_needed": self.restart_needed,
        }


def plan_setup(connection: Connection, archive_command: str, *, apply: bool = False) -> SetupPlan:
    """The settings archiving needs; with ``apply``, written by ALTER SYSTEM and reloaded."""
    with PgServer.connect(connection, application_name="lifeboat setup") as server:
        current = _settings(server)
        wanted: dict[str, str] = {}
        if current.get("wal_level") not in ("replica", "logical"):
            wanted["wal_level"] = "replica"
        if current.get("archive_mode") not in ("on", "always"):
            wanted["archive_mode"] = "on"
        if current.get("archive_command") != archive_command:
            wanted["archive_command"] = archive_command
        if current.get("archive_timeout", "0") in ("0", "0s"):
            wanted["archive_timeout"] = "60s"
        plan = SetupPlan(wanted, current)
        if apply and wanted:
            for name, value in wanted.items():
                server.alter_system(name, value)
            server.reload()
            plan.applied = True
            plan.restart_needed = [n for n in RESTART_SETTINGS if n in wanted]
        return plan
