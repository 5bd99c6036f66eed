"""The WAL spool: small status files shared by ``wal-push``/``wal-fetch`` calls and their
background workers.

Layout below the spool directory (one per cluster and repository)::

    out/<wal file>.ok      pushed: durable in the repository (or deliberately dropped); kept
                           until PostgreSQL has marked the file done, so a repeated call finds it
    out/<wal file>.error   the push failed: JSON {code, kind, message, hint}
    out/failed             the last failed ``wal-push`` call: JSON {wal, at, code, kind, message, hint};
                           kept, so a base backup waiting for WAL can say why archiving fails
    out/worker.lock        held (flock) by the background pusher while it runs
    out/queue-limit        the queue limit of the pusher that ran last: bytes, or ``none``; a call
                           waits for a running pusher without loading the rest of Lifeboat only
                           when it is ``none`` (otherwise the call checks the queue itself)
    in/<wal file>          a prefetched file, complete (written to a temporary name, renamed)
    in/<wal file>.missing  not in the archive when asked for (content: why it matters, if it does)
    in/<wal file>.error    the fetch failed: JSON {code, message, hint}
    in/request             the file PostgreSQL asked for last, and a token
    in/worker.lock         held by the background fetcher
    worker.log             what the background workers did

A status file only ever claims what is true: ``.ok`` is written after the repository
said the object is durable. Losing the spool loses nothing but time: the next call
pushes again, and pushing identical content is a success. Run as root, the spool's files
keep the owner of the directory it lives in (the data directory's owner, by default).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

OK_SUFFIX = ".ok"
ERROR_SUFFIX = ".error"
MISSING_SUFFIX = ".missing"
DROPPED = "dropped"
LOG_NAME = "worker.log"
LOG_LIMIT = 1024 * 1024
LAST_FAILURE = "failed"
QUEUE_LIMIT = "queue-limit"
DEFAULT_DIR_NAME = "lifeboat_spool"  # below the data directory
SPOOL_ENV = "LIFEBOAT_WAL_SPOOL"
_TMP = ".tmp-"


@dataclass(frozen=True)
class Failure:
    """A failure a worker reports to the call waiting for it."""

    code: int
    message: str
    hint: str = ""
    kind: str = ""  # the error's class (StoragePermissionDenied, WalConflict, …), when it was one of ours

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "kind": self.kind, "message": self.message, "hint": self.hint}

    def encode(self) -> bytes:
        return json.dumps(self.to_json()).encode()

    @classmethod
    def decode(cls, data: bytes) -> Failure:
        try:
            return cls.from_json(json.loads(data))
        except (ValueError, KeyError, TypeError):
            return cls(1, "a background worker reported an unreadable failure", "")

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> Failure:
        return cls(int(str(doc["code"])), str(doc["message"]), str(doc.get("hint", "")), str(doc.get("kind", "")))


@dataclass(frozen=True)
class RecordedFailure:
    """The last failed ``wal-push`` call of one spool: which file, when (epoch seconds), and why."""

    wal: str
    at: float
    failure: Failure

    def encode(self) -> bytes:
        return json.dumps({"wal": self.wal, "at": self.at, **self.failure.to_json()}).encode()

    @classmethod
    def decode(cls, data: bytes) -> RecordedFailure | None:
        try:
            doc = json.loads(data)
            return cls(str(doc["wal"]), float(doc["at"]), Failure.from_json(doc))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class Missing:
    """The file is not in the archive; ``note`` explains a gap (later files exist)."""

    note: str = ""


def _owner_for(path: Path) -> tuple[int, int] | None:
    """When this process is root: the owner of ``path`` or its nearest existing parent, unless root."""
    if os.geteuid() != 0:
        return None
    for candidate in (path, *path.parents):
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        return (st.st_uid, st.st_gid) if st.st_uid != 0 else None
    return None


def _give(fd: int, owner: tuple[int, int] | None) -> None:
    if owner is not None:
        os.fchown(fd, *owner)


def _write_atomic(path: Path, data: bytes, owner: tuple[int, int] | None = None) -> None:
    tmp = path.parent / f"{_TMP}{os.urandom(6).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        _give(fd, owner)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class WorkerLock:
    """An exclusive ``flock`` on a file; released when closed or when the process dies."""

    def __init__(self, path: Path, owner: tuple[int, int] | None = None) -> None:
        self.path = path
        self._owner = owner
        self._fd = -1

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            _give(fd, self._owner)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def is_current(self) -> bool:
        """True while the held lock file is still the one at ``path`` (the spool was not removed)."""
        if self._fd < 0:
            return False
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(self._fd)
        return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)

    def held_elsewhere(self) -> bool:
        """True when another process holds the lock (probes without keeping it)."""
        if self.try_acquire():
            self.release()
            return False
        return True


class Spool:
    """Status files and prefetched WAL for one cluster and repository."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.out = self.root / "out"
        self.inbox = self.root / "in"
        # Run as root, what this spool creates keeps the owner of where it lives.
        self._owner = _owner_for(self.root)

    def ensure(self) -> Spool:
        missing = [d for d in (*reversed(self.root.parents), self.root) if not d.exists()]
        for directory in (self.root, self.out, self.inbox):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._owner is not None:
            for directory in (*missing, self.out, self.inbox):
                os.chown(directory, *self._owner)
        return self

    # --- pushing ---------------------------------------------------------------------------
    def push_done(self, name: str) -> str | None:
        """``'pushed'``/``'dropped'`` when a worker finished ``name``, else None."""
        data = _read(self.out / (name + OK_SUFFIX))
        if data is None:
            return None
        return DROPPED if data.strip() == DROPPED.encode() else "pushed"

    def push_failure(self, name: str) -> Failure | None:
        data = _read(self.out / (name + ERROR_SUFFIX))
        return Failure.decode(data) if data is not None else None

    def mark_pushed(self, name: str, *, dropped: bool = False) -> None:
        _write_atomic(self.out / (name + OK_SUFFIX), DROPPED.encode() if dropped else b"pushed", self._owner)
        _remove(self.out / (name + ERROR_SUFFIX))

    def mark_push_failed(self, name: str, failure: Failure) -> None:
        _write_atomic(self.out / (name + ERROR_SUFFIX), failure.encode(), self._owner)

    def record_failure(self, record: RecordedFailure) -> None:
        """Keep the last failed ``wal-push`` call, for whoever waits on archiving to tell why."""
        self.ensure()
        _write_atomic(self.out / LAST_FAILURE, record.encode(), self._owner)

    def forget_push(self, name: str) -> None:
        """Forget a finished push (once PostgreSQL no longer has the file queued)."""
        _remove(self.out / (name + OK_SUFFIX))
        _remove(self.out / (name + ERROR_SUFFIX))

    def forget_push_failure(self, name: str) -> None:
        _remove(self.out / (name + ERROR_SUFFIX))

    def pushed_names(self) -> set[str]:
        """The files a worker finished (pushed or dropped): one listing of ``out/``."""
        return {entry[: -len(OK_SUFFIX)] for entry in _listdir(self.out) if entry.endswith(OK_SUFFIX)}

    def push_statuses(self) -> dict[str, str]:
        """File name → ``ok`` or ``error`` for every push status present."""
        found: dict[str, str] = {}
        for entry in _listdir(self.out):
            if entry.endswith(OK_SUFFIX):
                found[entry[: -len(OK_SUFFIX)]] = "ok"
            elif entry.endswith(ERROR_SUFFIX):
                found.setdefault(entry[: -len(ERROR_SUFFIX)], "error")
        return found

    def note_queue_limit(self, limit: int | None) -> None:
        """Say which queue limit the running pusher keeps (:data:`QUEUE_LIMIT`)."""
        _write_atomic(self.out / QUEUE_LIMIT, b"none" if limit is None else str(limit).encode(), self._owner)

    def push_lock(self) -> WorkerLock:
        return WorkerLock(self.out / "worker.lock", self._owner)

    # --- fetching --------------------------------------------------------------------------
    def prefetched(self, name: str) -> Path | None:
        path = self.inbox / name
        return path if path.is_file() else None

    def store_prefetched(self, name: str, data: bytes) -> None:
        _write_atomic(self.inbox / name, data, self._owner)

    def prefetched_names(self) -> set[str]:
        return {e for e in _listdir(self.inbox) if "." not in e or e.endswith((".history", ".partial"))}

    def discard_prefetched(self, name: str) -> None:
        _remove(self.inbox / name)

    def mark_missing(self, name: str, note: str = "") -> None:
        """``name`` is not archived; ``note`` says why that matters (a gap), if it does."""
        _write_atomic(self.inbox / (name + MISSING_SUFFIX), note.encode(), self._owner)

    def mark_fetch_failed(self, name: str, failure: Failure) -> None:
        _write_atomic(self.inbox / (name + ERROR_SUFFIX), failure.encode(), self._owner)

    def fetch_outcome(self, name: str) -> Failure | Missing | None:
        """:class:`Missing`, a :class:`Failure`, or None (nothing known yet) for ``name``."""
        note = _read(self.inbox / (name + MISSING_SUFFIX))
        if note is not None:
            return Missing(note.decode(errors="replace"))
        data = _read(self.inbox / (name + ERROR_SUFFIX))
        return Failure.decode(data) if data is not None else None

    def forget_fetch(self, name: str) -> None:
        _remove(self.inbox / (name + MISSING_SUFFIX))
        _remove(self.inbox / (name + ERROR_SUFFIX))

    def request(self, name: str) -> None:
        """Ask the fetcher for ``name`` (a fresh token makes a repeated request a new one)."""
        _write_atomic(self.inbox / "request", f"{name} {os.urandom(4).hex()}".encode(), self._owner)

    def current_request(self) -> tuple[str, str] | None:
        """The last request as (file name, token), or None."""
        data = _read(self.inbox / "request")
        if not data:
            return None
        name, _, token = data.decode("ascii", errors="replace").strip().partition(" ")
        return name, token

    def fetch_lock(self) -> WorkerLock:
        return WorkerLock(self.inbox / "worker.lock", self._owner)

    # --- housekeeping ------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.root / LOG_NAME

    def log(self, line: str) -> None:
        """Append one line to the worker log (truncated when it grows past 1 MiB)."""
        path = self.log_path
        with contextlib.suppress(OSError):
            if path.exists() and path.stat().st_size > LOG_LIMIT:
                path.replace(path.with_suffix(".log.1"))
            with open(path, "a", encoding="utf-8") as out:
                _give(out.fileno(), self._owner)
                out.write(line.rstrip("\n") + "\n")

    def clean_temporaries(self) -> None:
        for directory in (self.out, self.inbox):
            for entry in _listdir(directory):
                if entry.startswith(_TMP):
                    _remove(directory / entry)


def spool_bases(archive_command: str, data_directory: str, configured: str | None = None) -> list[Path]:
    """Where the spools of ``archive_command`` can be: its ``--spool``, its ``LIFEBOAT_WAL_SPOOL=``,
    a configured ``wal_spool_dir``, and the default below the data directory."""
    bases: list[Path] = []
    try:
        words = shlex.split(archive_command)
    except ValueError:
        words = []
    for i, word in enumerate(words):
        if word == "--spool" and i + 1 < len(words):
            bases.append(Path(words[i + 1]))
        elif word.startswith(("--spool=", SPOOL_ENV + "=")):
            bases.append(Path(word.partition("=")[2]))
    if configured:
        bases.append(Path(configured))
    bases.append(Path(data_directory) / DEFAULT_DIR_NAME)
    return [b if b.is_absolute() else Path(data_directory) / b for b in dict.fromkeys(bases)]


def recorded_failures(bases: list[Path]) -> list[RecordedFailure]:
    """The last failed ``wal-push`` of every spool below ``bases`` that this process may read."""
    found: list[RecordedFailure] = []
    for base in bases:
        try:
            entries = list(_listdir(base))
        except OSError:
            continue  # not ours to read (a spool is private to the server's user)
        for entry in entries:
            try:
                data = _read(base / entry / "out" / LAST_FAILURE)
            except OSError:
                continue
            record = RecordedFailure.decode(data) if data is not None else None
            if record is not None:
                found.append(record)
    return found


def _listdir(directory: Path) -> Iterator[str]:
    try:
        with os.scandir(directory) as listing:
            names = [entry.name for entry in listing]
    except FileNotFoundError:
        return iter(())
    return iter(names)
