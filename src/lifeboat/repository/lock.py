"""Repository locks: shared for writers that only add, exclusive for those that remove.

A lock is an encrypted object ``locks/<random id>`` naming its holder. Taking a lock
writes it first, then lists the others: a conflicting, live lock makes the taker remove
its own and back off, so two takers can never both win. Holders refresh their lock
every few minutes (a new object, then the old one removed); a lock not refreshed for
``STALE_AFTER`` — or one held by a process that no longer runs on this host — is
stale, ignored by takers and removed by ``lifeboat unlock``.

A refresh that fails (the storage's retry policy spent) is tried again every fifth of the
refresh interval. A lock not refreshed for ``STALE_AFTER`` less one interval — close to
when others may take it as stale — is *lost*: the holder learns it from
:meth:`HeldLock.ensure_held`, which the repository calls before each read and write, and
from leaving the ``with`` block, and fails with :class:`LockLost` rather than go on
unprotected.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lifeboat.core.host import this_host
from lifeboat.core.tokens import token_hex
from lifeboat.core.units import format_duration
from lifeboat.errors import IntegrityError, LifeboatError, LockLost, RepositoryLocked, StorageError, StorageNotFound
from lifeboat.repository import layout
from lifeboat.repository.crypto.aead import ObjectCipher, ObjectKind
from lifeboat.storage.base import Backend

STALE_AFTER = timedelta(minutes=30)
REFRESH_EVERY = timedelta(minutes=5)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class LockRecord:
    """Who holds a lock and since when."""

    exclusive: bool
    operation: str
    hostname: str
    pid: int
    username: str
    created: datetime
    refreshed: datetime
    id: str = ""

    def encode(self) -> bytes:
        return json.dumps(
            {
                "exclusive": self.exclusive,
                "operation": self.operation,
                "hostname": self.hostname,
                "pid": self.pid,
                "username": self.username,
                "created": self.created.isoformat(),
                "refreshed": self.refreshed.isoformat(),
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def decode(cls, data: bytes, lock_id: str) -> LockRecord:
        try:
            doc = json.loads(data)
            return cls(
                exclusive=bool(doc["exclusive"]),
                operation=str(doc["operation"]),
                hostname=str(doc["hostname"]),
                pid=int(doc["pid"]),
                username=str(doc["username"]),
                created=datetime.fromisoformat(doc["created"]),
                refreshed=datetime.fromisoformat(doc["refreshed"]),
                id=lock_id,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"lock {lock_id[:8]} is malformed") from exc

    def is_stale(self, now: datetime, hostname: str) -> bool:
        if now - self.refreshed > STALE_AFTER:
            return True
        return self.hostname == hostname and not _pid_alive(self.pid)

    def describe(self) -> str:
        kind = "exclusive" if self.exclusive else "shared"
        return (
            f"{kind} lock {self.id[:8]} for {self.operation} by {self.username}@{self.hostname} "
            f"pid {self.pid} since {self.created.isoformat(timespec='seconds')}"
        )


class LockStore:
    """Reads, writes and judges the locks of one repository."""

    def __init__(
        self,
        backend: Backend,
        cipher: ObjectCipher,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        hostname: str | None = None,
    ) -> None:
        self._backend = backend
        self._cipher = cipher
        self._clock = clock
        self.hostname = hostname or this_host()

    def now(self) -> datetime:
        return self._clock()

    def records(self) -> Iterator[LockRecord]:
        for info in self._backend.list(layout.LOCKS):
            lock_id = info.name.rsplit("/", 1)[-1]
            try:
                data = self._backend.get(info.name)
            except StorageNotFound:
                continue  # released while we listed
            yield LockRecord.decode(self._cipher.open(ObjectKind.LOCK, data, what=f"lock {lock_id[:8]}"), lock_id)

    def write(self, record: LockRecord, lock_id: str | None = None) -> LockRecord:
        """Store ``record`` as a new lock object (``lock_id``, or a random one)."""
        lock_id = lock_id or token_hex(16)
        self._backend.put(layout.lock_name(lock_id), self._cipher.seal(ObjectKind.LOCK, record.encode()))
        return LockRecord(**{**record.__dict__, "id": lock_id})

    def remove(self, lock_id: str) -> None:
        with suppress(StorageNotFound):
            self._backend.delete(layout.lock_name(lock_id))

    def conflicts(self, mine: LockRecord) -> list[LockRecord]:
        now = self.now()
        return [
            other
            for other in self.records()
            if other.id != mine.id and (mine.exclusive or other.exclusive) and not other.is_stale(now, self.hostname)
        ]

    def remove_stale(self, *, remove_all: bool = False) -> list[LockRecord]:
        now = self.now()
        removed = []
        for record in self.records():
            if remove_all or record.is_stale(now, self.hostname):
                self.remove(record.id)
                removed.append(record)
        return removed


class HeldLock:
    """A lock this process holds; refreshed by a daemon thread until released.

    ``refresh_every`` and ``stale_after`` default to the module's :data:`REFRESH_EVERY` and
    :data:`STALE_AFTER`; the lock is lost when not refreshed for ``stale_after`` less one
    ``refresh_every``."""

    def __init__(
        self,
        store: LockStore,
        record: LockRecord,
        *,
        refresh_every: timedelta | None = None,
        stale_after: timedelta | None = None,
    ) -> None:
        self._store = store
        self.record = record
        self._stop = threading.Event()
        self._refresh_every = refresh_every or REFRESH_EVERY
        self._give_up_after = (stale_after or STALE_AFTER) - self._refresh_every
        self._lost: LockLost | None = None
        self._lost_event = threading.Event()
        self._thread = threading.Thread(target=self._refresh_loop, name="lifeboat-lock-refresh", daemon=True)
        self._thread.start()

    def _refresh_loop(self) -> None:
        wait = self._refresh_every.total_seconds()
        while not self._stop.wait(wait):
            overdue = self._store.now() - self.record.refreshed
            if overdue >= self._give_up_after:  # asleep (a suspended host) or failing for too long
                self._lose(overdue, None)
                return
            try:
                self.refresh()
            except StorageError as exc:  # the storage's retry policy is spent: try again soon
                overdue = self._store.now() - self.record.refreshed
                if overdue >= self._give_up_after:
                    self._lose(overdue, exc)
                    return
                wait = min(self._refresh_every / 5, self._give_up_after - overdue).total_seconds()
                continue
            wait = self._refresh_every.total_seconds()

    def _lose(self, overdue: timedelta, error: StorageError | None) -> None:
        record = self.record
        why = f" (the last attempt: {error.message})" if error is not None else ""
        self._lost = LockLost(
            f"the repository lock {record.id[:8]} for {record.operation} could not be refreshed for "
            f"{format_duration(overdue.total_seconds())}{why}: other processes may take it as stale, "
            f"so the {record.operation} stopped rather than go on unprotected"
        )
        self._lost_event.set()

    @property
    def released(self) -> bool:
        return self._stop.is_set()

    def ensure_held(self) -> None:
        """Raise :class:`LockLost` if the lock could not be refreshed in time (and is not released)."""
        if self._lost is not None and not self.released:
            raise self._lost

    def wait_lost(self, timeout: float | None = None) -> bool:
        """Wait until the lock is lost (True) or ``timeout`` passes (False)."""
        return self._lost_event.wait(timeout)

    def refresh(self) -> None:
        old = self.record
        fresh = self._store.write(LockRecord(**{**old.__dict__, "refreshed": self._store.now(), "id": ""}))
        self.record = fresh
        self._store.remove(old.id)

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._store.remove(self.record.id)

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        if kind is None and self._lost is None:
            self.release()
            return
        with suppress(StorageError):  # keep the failure; a lock left behind goes stale
            self.release()
        if self._lost is not None and (kind is None or isinstance(error, LifeboatError)):
            # Whatever went wrong after the lock was lost may be its consequence (a pack pruned
            # under a reader): the lost lock is what to report. Ctrl-C and bugs keep their own.
            raise self._lost


def acquire(
    store: LockStore,
    *,
    exclusive: bool,
    operation: str,
    wait: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    refresh_every: timedelta | None = None,
) -> HeldLock:
    """Take a lock, retrying for up to ``wait`` seconds while a conflicting lock is held."""
    deadline = time.monotonic() + wait
    delay = 0.2
    while True:
        now = store.now()
        lock_id = token_hex(16)  # known before the write, so an interrupted write is removed too
        try:
            mine = store.write(
                LockRecord(exclusive, operation, store.hostname, os.getpid(), _username(), now, now), lock_id
            )
            conflicts = store.conflicts(mine)
            if not conflicts:
                return HeldLock(store, mine, refresh_every=refresh_every)
        except BaseException:  # a storage error, Ctrl-C or SIGTERM: leave no lock behind
            with suppress(StorageError):
                store.remove(lock_id)
            raise
        store.remove(mine.id)
        if time.monotonic() >= deadline:
            raise RepositoryLocked("the repository is locked: " + "; ".join(c.describe() for c in conflicts[:3]))
        sleep(min(delay, max(0.0, deadline - time.monotonic())) * random.uniform(0.5, 1.0))  # noqa: S311
        delay = min(delay * 2, 5.0)


def _username() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        return str(os.getuid())
