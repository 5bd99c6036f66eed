"""The audit log's file: hash-chained JSON lines appended by every process of a host.

Every CLI command, the daemon's jobs and (later) the API append one entry per operation
(docs/audit.md). Appends from several processes at once are serialised by ``flock`` on the
file itself: under the lock a writer reads the last line's hash and sequence number, writes
its line with one ``write`` to a descriptor opened ``O_APPEND`` and ``fsync``s it, so no two
entries claim the same place in the chain. The file is created mode 0600 (its directory 0700
when created): who ran what is nobody else's business. The chain's rules — canonical form,
hashing, verification — are core/auditchain.py's; this module only reads and writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.core.auditchain import Anchor, Verification, anchor_due, entry_line, new_entry, next_link, verify_lines
from lifeboat.core.host import this_host
from lifeboat.errors import LifeboatError

if TYPE_CHECKING:
    from lifeboat.config.model import LifeboatConfig
    from lifeboat.repository.repo import Repository

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
ANCHORED_VERSION = 1
DEFAULT_ANCHOR_EVERY = 100
_TAIL_BLOCK = 8192


class AuditError(LifeboatError):
    """The audit log cannot be written (or read)."""

    default_hint = "check the audit log's path (audit.path in the configuration) and its directory's permissions"


@dataclass(frozen=True)
class Actor:
    """Who ran an operation: the OS user, and the API token's name when it came through the API."""

    user: str
    token: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "token": self.token}


def os_user() -> str:
    """The name of this process's effective user (its number when it has no name): what the
    kernel says, not ``$USER``, which whoever starts the process can set."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _last_line(fd: int) -> bytes | None:
    """The last line of the file open on ``fd`` (without its newline); None when it is empty."""
    end = os.lseek(fd, 0, os.SEEK_END)
    if end == 0:
        return None
    tail = b""
    position = end
    while position > 0:
        step = min(_TAIL_BLOCK, position)
        position -= step
        tail = os.pread(fd, step, position) + tail
        body = tail[:-1] if tail.endswith(b"\n") else tail
        if b"\n" in body:
            return body.rsplit(b"\n", 1)[1]
    return tail[:-1] if tail.endswith(b"\n") else tail


def _all_lines(fd: int) -> list[bytes]:
    size = os.lseek(fd, 0, os.SEEK_END)
    data = os.pread(fd, size, 0)
    return (data[:-1] if data.endswith(b"\n") else data).split(b"\n") if data else []


def _first_line(fd: int) -> bytes | None:
    """The first line of the file open on ``fd`` (without its newline); None when it is empty."""
    data = b""
    offset = 0
    while b"\n" not in data:
        chunk = os.pread(fd, _TAIL_BLOCK, offset)
        if not chunk:
            break
        data += chunk
        offset += len(chunk)
    return data.split(b"\n", 1)[0] if data else None


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ends_with_newline(fd: int) -> bool:
    end = os.lseek(fd, 0, os.SEEK_END)
    return end == 0 or os.pread(fd, 1, end - 1) == b"\n"


AUDIT_FILE = "audit.jsonl"


def audit_path(config: LifeboatConfig | None, state_directory: str | os.PathLike[str]) -> Path:
    """The log's path: the configuration's ``audit.path``, else ``<state directory>/audit.jsonl``."""
    configured = config.audit.path if config is not None else None
    return Path(configured) if configured else Path(state_directory) / AUDIT_FILE


def configured_log(config: LifeboatConfig | None, state_directory: str | os.PathLike[str]) -> AuditLog:
    """The audit log a front end (the CLI, the daemon) appends to."""
    return AuditLog(audit_path(config, state_directory))


def _leave_to_directory_owner(fd: int, directory: Path) -> None:
    """A log root has just created in another user's state directory (an operator's command in
    /var/lib/lifeboat, owned by postgres) is given to that user: else the daemon and
    archive_command, running as that user, could never append to it again."""
    if os.geteuid() != 0:
        return
    with contextlib.suppress(OSError):
        made, parent = os.fstat(fd), os.stat(directory)
        if made.st_uid == 0 and made.st_size == 0 and parent.st_uid != 0:
            os.fchown(fd, parent.st_uid, parent.st_gid)


class AuditLog:
    """The audit log at ``path`` (created on the first append)."""

    def __init__(
        self, path: str | os.PathLike[str], *, host: str | None = None, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.path = Path(path)
        self.host = host if host is not None else this_host()
        self.clock = clock

    # --- writing ---------------------------------------------------------------------------------
    def _open_for_append(self) -> int:
        try:
            with contextlib.suppress(FileExistsError):  # a file in the way: open() says "Not a directory"
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {_why(exc)}") from None
        _leave_to_directory_owner(fd, self.path.parent)
        return fd

    def check_writable(self) -> None:
        """Raise :class:`AuditError` unless an entry could be appended now (nothing is written)."""
        os.close(self._open_for_append())

    def append(
        self,
        *,
        actor: Actor,
        action: str,
        arguments: Mapping[str, Any],
        result: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Append one entry (``arguments`` lose their secrets here); returns it as written.

        ``result``: ``status`` (ok, error, interrupted), ``exit_code``, ``error`` (one line or None).
        Raises :class:`AuditError` when the log cannot be written."""
        created = not os.path.lexists(self.path)
        fd = self._open_for_append()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_line(fd)
            seq, prev = next_link([] if last is None else [last])
            if last is not None and seq == 1:  # the last line is not an entry: find the last that is
                seq, prev = next_link(reversed(_all_lines(fd)))
            entry = new_entry(
                seq=seq,
                prev=prev,
                time=_time_text(self.clock()),
                host=self.host,
                actor=actor.to_json(),
                action=action,
                arguments=arguments,
                result=result,
            )
            line = entry_line(entry)
            if not _ends_with_newline(fd):  # a line a crash cut short stays a line of its own
                line = b"\n" + line
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(0, f"short write ({written} of {len(line)} bytes)")
            os.fsync(fd)
            if created:  # the new file's name is durable too
                _fsync_directory(self.path.parent)
        except OSError as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {_why(exc)}") from None
        finally:
            os.close(fd)  # releases the lock
        return entry

    # --- reading -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _reading(self) -> Iterator[int]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise AuditError(
                f"there is no audit log at {self.path}", hint="it is created by the first command run on this host"
            ) from None
        except OSError as exc:
            raise AuditError(f"cannot read the audit log {self.path}: {_why(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # no half-written last line
            yield fd
        finally:
            os.close(fd)

    def lines(self) -> list[bytes]:
        """The log's lines, without their newlines."""
        with self._reading() as fd:
            chunks: list[bytes] = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
        data = b"".join(chunks)
        if not data:
            return []
        return (data[:-1] if data.endswith(b"\n") else data).split(b"\n")

    def entries(self) -> list[dict[str, Any]]:
        """The entries that can be read (lines that are not entries are skipped: ``verify`` names them)."""
        found: list[dict[str, Any]] = []
        for line in self.lines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    found.append(entry)
        return found

    def verify(self, anchors: list[Anchor] | None = None, replaced: list[Anchor] | None = None) -> Verification:
        """The chain checked, and against ``anchors`` (of this log) and ``replaced`` (of other
        logs once at its place) when given."""
        return verify_lines(self.lines(), anchors or (), replaced or ())

    def head(self) -> Anchor | None:
        """The chain's head as an anchor (None: an empty log, or one whose first line is not entry 1)."""
        if not self.path.exists():
            return None
        with self._reading() as fd:  # the first and the last line only: a log grows for years
            first_line = _first_line(fd)
            last_line = _last_line(fd)
        if first_line is None or last_line is None:
            return None
        try:
            first, last = json.loads(first_line), json.loads(last_line)
            if first.get("seq") != 1:
                return None
            return Anchor(
                log=str(first["hash"]),
                seq=int(last["seq"]),
                hash=str(last["hash"]),
                time=str(last["time"]),
                host=str(last["host"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    # --- anchors -------------------------------------------------------------------------------------
    @property
    def anchored_path(self) -> Path:
        """Where this host notes which entry it last anchored in each repository (a cache: the
        repository holds the anchors themselves)."""
        return self.path.with_name(self.path.name + ".anchored.json")

    def last_anchored(self, repository_id: str) -> int | None:
        from lifeboat.operations.statefile import read_state_file

        doc = read_state_file(self.anchored_path, ANCHORED_VERSION)
        seq = (doc or {}).get("repositories", {}).get(repository_id) if doc else None
        return seq if isinstance(seq, int) else None

    def _note_anchored(self, repository_id: str, seq: int) -> None:
        from lifeboat.operations.statefile import read_state_file, write_state_file

        doc = read_state_file(self.anchored_path, ANCHORED_VERSION) or {}
        known = doc.get("repositories")
        repositories: dict[str, Any] = known if isinstance(known, dict) else {}
        write_state_file(
            self.anchored_path, {"version": ANCHORED_VERSION, "repositories": {**repositories, repository_id: seq}}
        )

    def anchor(self, repo: Repository) -> Anchor | None:
        """Store the chain's head in ``repo`` (an ``audit-anchor`` record); returns it (None: no
        log to anchor). Raises the repository's errors (a read-only storage, a lost lock)."""
        from lifeboat.operations.audit_anchors import save_anchor

        head = self.head()
        if head is None:
            return None
        save_anchor(repo, head, path=str(self.path.absolute()), time=self.clock())
        self._note_anchored(repo.header.repository_id, head.seq)
        return head

    def anchor_if_due(self, repo: Repository, every: int) -> Anchor | None:
        """Anchor the head in ``repo`` when ``every`` entries or more were appended since this
        host last anchored this log there."""
        head = self.head()
        if head is None or not anchor_due(head.seq, self.last_anchored(repo.header.repository_id), every):
            return None
        return self.anchor(repo)


__all__ = [
    "AUDIT_FILE",
    "DEFAULT_ANCHOR_EVERY",
    "FILE_MODE",
    "Actor",
    "AuditError",
    "AuditLog",
    "audit_path",
    "configured_log",
    "os_user",
]
