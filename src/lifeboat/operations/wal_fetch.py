"""Fetching WAL during recovery (``restore_command``), with background prefetch.

PostgreSQL replays WAL with one process and asks for one file at a time, so recovery
runs only as fast as each fetch returns. The call it makes (:func:`fetch_file`) posts a
request in the spool and takes the file as soon as it is there; a background fetcher
(:class:`BackgroundFetcher`) fetches the requested file first and the next segments of
the same timeline ahead of time, several at a time, while PostgreSQL replays.

What PostgreSQL is told:

* the file is restored — exit 0;
* the file is not in the archive — the status PostgreSQL expects at the end of the
  archive (:data:`NOT_FOUND`), so recovery ends there cleanly. When later segments of
  the timeline are archived (a *gap*), a warning naming the segment goes to the server
  log too. Not found, not fatal: PostgreSQL reads ahead of replay and may ask for
  segments past its target; a target that is really beyond a gap makes PostgreSQL fail
  ("recovery ended before configured recovery target was reached"), and ``restore
  postgres`` checks the archive before a recovery to *latest*;
* a damaged file, when the recovery has an explicit target PostgreSQL insists on reaching
  (:attr:`FetchSettings.damage_ends_recovery`) — not found, with a warning naming the
  damage: PostgreSQL reads ahead of replay, and a damaged segment past the target must not
  stop a recovery that needs none of it; one before the target makes PostgreSQL stop
  ("recovery ended before configured recovery target was reached");
* anything else — a damaged object on the way to the end of the archive, a wrong key, an
  unreachable repository — a status above 125 (:data:`FATAL`), which makes PostgreSQL
  stop recovery instead of ending it early and promoting a database that silently lacks WAL.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lifeboat.core.events import CancelToken
from lifeboat.core.wal import WalFileKind, WalSegment, parse_wal_file_name
from lifeboat.errors import ExitCode, LifeboatError, StorageNotFound, WalDamaged, WalMissing
from lifeboat.repository.wal import WalArchive
from lifeboat.sources.postgres.spool import Failure, Missing, Spool

NOT_FOUND = 1
FATAL = 126


@dataclass(frozen=True)
class FetchSettings:
    prefetch: int = 8  # segments fetched ahead of the one asked for
    parallel: int = 2
    idle_exit: float = 30.0
    timeout: float = 600.0
    poll: float = 0.005
    gap_recheck: float = 1.0  # look again before calling a missing segment a gap
    damage_ends_recovery: bool = False  # a damaged file is answered as not archived (explicit target)


class FetchFailed(LifeboatError):
    """A WAL file could not be fetched for a reason other than its absence."""

    exit_code = ExitCode.INTEGRITY


def place(source: Path, destination: Path) -> None:
    """Move a prefetched file to where PostgreSQL wants it (copy across file systems)."""
    try:
        os.replace(source, destination)
    except OSError as exc:
        if exc.errno != 18:  # EXDEV
            raise
        tmp = destination.with_name(destination.name + ".lifeboat-tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, destination)
        source.unlink()


def write_file(destination: Path, data: bytes) -> None:
    tmp = destination.with_name(destination.name + ".lifeboat-tmp")
    tmp.write_bytes(data)
    os.replace(tmp, destination)


@dataclass(frozen=True)
class FetchResult:
    found: bool
    note: str = ""  # why a missing file matters (a gap), if it does


def fetch_file(
    name: str,
    destination: Path,
    spool: Spool,
    start_worker: Callable[[], None],
    settings: FetchSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> FetchResult:
    """Put ``name`` at ``destination`` (found), or say it is not archived; raises otherwise."""
    parse_wal_file_name(name)
    started = monotonic()
    spool.forget_fetch(name)
    lock = spool.fetch_lock()
    starts = 0
    requested = False
    next_check = started
    while True:
        ready = spool.prefetched(name)
        if ready is not None:
            place(ready, destination)
            return FetchResult(True)
        outcome = spool.fetch_outcome(name)
        if isinstance(outcome, Missing):
            spool.forget_fetch(name)
            return FetchResult(False, outcome.note)
        if isinstance(outcome, Failure):
            spool.forget_fetch(name)
            raise FetchFailed(outcome.message, hint=outcome.hint or None)
        if not requested:
            spool.request(name)
            requested = True
        now = monotonic()
        if now - started > settings.timeout:
            raise FetchFailed(f"{name} was not fetched within {settings.timeout:.0f}s", hint=f"see {spool.log_path}")
        if now >= next_check:
            next_check = now + 0.2
            if not lock.held_elsewhere() and spool.prefetched(name) is None and spool.fetch_outcome(name) is None:
                if starts >= 3:
                    raise FetchFailed(
                        f"the background fetcher stopped three times without fetching {name}",
                        hint=f"see {spool.log_path}",
                    )
                starts += 1
                start_worker()
        sleep(settings.poll)


def fetch_direct(
    archive: WalArchive, name: str, destination: Path, *, damage_ends_recovery: bool = False
) -> FetchResult:
    """Fetch without spool or worker (``--sync``)."""
    try:
        data = archive.fetch(name)
    except StorageNotFound:
        gap = gap_after(archive, name, {f.name for f in archive.files()})
        return FetchResult(False, gap.message if gap is not None else "")
    except WalDamaged as exc:
        if not damage_ends_recovery:
            raise
        return FetchResult(False, damaged_note(exc))
    write_file(destination, data)
    return FetchResult(True)


def damaged_note(exc: WalDamaged) -> str:
    """What the server log says when a damaged file is answered as not archived."""
    return (
        f"{exc.message}; answered as not archived, so recovery ends before it: if the recovery target lies "
        "beyond, PostgreSQL stops with 'recovery ended before configured recovery target was reached' "
        f"({exc.hint})"
    )


def gap_after(archive: WalArchive, name: str, archived: set[str]) -> WalMissing | None:
    """An error when ``name`` is a missing segment with later segments of its timeline archived."""
    parsed = parse_wal_file_name(name)
    if parsed.kind is not WalFileKind.SEGMENT:
        return None
    timeline = name[:8]
    later = sorted(n for n in archived if n[:8] == timeline and len(n) == 24 and n > name)
    if not later:
        return None
    return WalMissing(
        f"WAL segment {name} is missing from the archive of system {archive.system_id}, but later segments "
        f"of timeline {int(timeline, 16)} are archived (next: {later[0]}): recovery cannot continue past this gap",
        hint="restore to a target before the gap ('lifeboat pg info' shows it), or put the segment back",
    )


class BackgroundFetcher:
    """Serves fetch requests from the spool and prefetches the segments that follow."""

    def __init__(
        self,
        archive: WalArchive,
        spool: Spool,
        settings: FetchSettings,
        *,
        segment_size: int,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        cancel: CancelToken | None = None,
    ) -> None:
        self.archive = archive
        self.cancel = cancel or CancelToken()
        self.spool = spool
        self.settings = settings
        self.segment_size = segment_size
        self._monotonic = monotonic
        self._sleep = sleep
        self._archived: set[str] = set()
        self._failed: set[str] = set()  # not prefetched again (PostgreSQL's own request still fetches)
        self._listed_at = -1e9
        self.fetched = 0

    def _log(self, text: str) -> None:
        self.spool.log(time.strftime("%Y-%m-%d %H:%M:%S ") + text)

    def _refresh(self) -> None:
        self._archived = {f.name for f in self.archive.files()}
        self._listed_at = self._monotonic()

    def _fetch(self, name: str) -> bool:
        if self.cancel.cancelled:
            return False  # queued before the cancel: left for the next fetcher
        data = self.archive.fetch(name)
        self.spool.store_prefetched(name, data)
        return True

    def _answer_missing(self, name: str) -> None:
        """``name`` is not archived: the end of the archive, or a gap."""
        if gap_after(self.archive, name, self._archived) is not None:
            self._sleep(self.settings.gap_recheck)  # a concurrent push may still be landing
            self._refresh()
            if name in self._archived:
                return
            gap = gap_after(self.archive, name, self._archived)
            if gap is not None:
                self.spool.mark_missing(name, gap.message)
                self._log(f"GAP {name}: {gap.message}")
                return
        self.spool.mark_missing(name)
        self._log(f"missing {name}")

    def _wanted(self, request: str) -> list[str]:
        """The segments to prefetch after ``request`` (same timeline, archived, not yet here)."""
        try:
            parsed = parse_wal_file_name(request)
        except ValueError:
            return []
        if parsed.kind is not WalFileKind.SEGMENT:
            return []
        segment = parsed.segment(self.segment_size)
        names: list[str] = []
        following: WalSegment = segment
        for _ in range(self.settings.prefetch):
            following = following.next()
            if following.name not in self._archived:
                break
            names.append(following.name)
        return names

    def _requested(self) -> str | None:
        current = self.spool.current_request()
        return current[0] if current else None

    def run(self) -> int:
        """Serve requests until none comes for ``idle_exit`` seconds or the cancel token is set;
        returns files fetched. A cancel is obeyed between segments: no new fetch starts, the ones
        under way finish into the spool, and the fetcher returns (PostgreSQL's next
        ``restore_command`` starts a new one)."""
        self._refresh()
        in_flight: dict[str, Future[bool]] = {}
        answered: str | None = None
        answered_token: tuple[str, str] | None = None
        last_request_at = self._monotonic()
        with ThreadPoolExecutor(max(1, self.settings.parallel), thread_name_prefix="lifeboat-walfetch") as pool:
            while True:
                for name, future in list(in_flight.items()):
                    if not future.done():
                        continue
                    del in_flight[name]
                    exc = future.exception()
                    if exc is None:
                        self.fetched += int(future.result())
                        continue
                    if isinstance(exc, StorageNotFound):
                        self._archived.discard(name)
                        if self._requested() == name:
                            self._answer_missing(name)
                        continue
                    self._failed.add(name)
                    if isinstance(exc, WalDamaged) and self.settings.damage_ends_recovery:
                        self._log(f"DAMAGED {name}: {exc.message}")
                        if self._requested() == name:
                            self.spool.mark_missing(name, damaged_note(exc))
                        continue
                    message = exc.message if isinstance(exc, LifeboatError) else f"{type(exc).__name__}: {exc}"
                    hint = exc.hint if isinstance(exc, LifeboatError) else ""
                    self._log(f"FAILED {name}: {message}")
                    if self._requested() == name:
                        self.spool.mark_fetch_failed(name, Failure(FATAL, message, hint))
                if self.cancel.cancelled:
                    if not in_flight:
                        self._log(f"fetcher stops: {self.cancel.reason or 'cancelled'}")
                        return self.fetched
                    self._sleep(self.settings.poll)
                    continue
                current = self.spool.current_request()
                now = self._monotonic()
                if current is not None and current != answered_token:
                    answered_token = current
                    request = answered = current[0]
                    last_request_at = now
                    if self.spool.prefetched(request) is None and request not in in_flight:
                        if request not in self._archived:
                            self._refresh()
                        if request in self._archived:
                            in_flight[request] = pool.submit(self._fetch, request)
                        else:
                            self._answer_missing(request)
                if answered:
                    have = self.spool.prefetched_names()
                    for name in self._wanted(answered):
                        if len(in_flight) >= 2 * max(1, self.settings.parallel):
                            break
                        if name not in have and name not in in_flight and name not in self._failed:
                            in_flight[name] = pool.submit(self._fetch, name)
                if not in_flight and now - last_request_at >= self.settings.idle_exit:
                    return self.fetched
                if now - self._listed_at > 30.0 and not in_flight:
                    self._refresh()
                self._sleep(self.settings.poll)
