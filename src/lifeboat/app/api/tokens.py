"""The API's bearer tokens (docs/api.md): made by ``lifeboat token create``, kept hashed in
``<state dir>/api-tokens.json``, read by the daemon at each request.

A token is ``lb_`` and 256 random bits (base64url); the file keeps only its SHA-256, so a
stolen file opens nothing. The file is written whole (a temporary file renamed into place,
mode 0600) under an ``flock`` on a lock file beside it, so two ``token`` commands at once lose
nothing. The daemon's :class:`TokenStore` reads it again whenever its inode, size or mtime
changed: a revoked token is refused by the next request, without a restart.

No FastAPI here: the CLI uses this module too.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lifeboat.errors import LifeboatError, UsageError

TOKENS_FILE = "api-tokens.json"
FORMAT_VERSION = 1
PREFIX = "lb_"
TOKEN_BYTES = 32  # 256 bits
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class Role(enum.IntEnum):
    """What a token may do; each role may do what the ones below it may."""

    VIEWER = 1  # read everything but the audit log
    OPERATOR = 2  # and start backups, verifies, drills, checks; cancel runs
    ADMIN = 3  # and retention, prune, copy, restore plans, the audit log

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def of(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise UsageError(
                f"unknown role {text!r}", hint="a role is viewer, operator or admin (docs/api.md#roles)"
            ) from None


class TokenFileError(LifeboatError):
    """The token file cannot be read or written."""

    default_hint = "check the state directory (LIFEBOAT_STATE_DIR) and its permissions; the file must be mode 0600"


class TokenExists(UsageError):
    """A token of that name exists already."""

    default_hint = "choose another name, or 'lifeboat token revoke' the old one first"


class NoSuchToken(UsageError):
    """No token has that name."""

    default_hint = "'lifeboat token list' shows the tokens"


@dataclass(frozen=True)
class TokenRecord:
    """One token as the file keeps it: never the token itself."""

    name: str
    role: Role
    digest: str  # hex SHA-256 of the token's text
    created: datetime
    expires: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and now >= self.expires

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.label,
            "sha256": self.digest,
            "created": self.created.isoformat(timespec="seconds"),
            "expires": self.expires.isoformat(timespec="seconds") if self.expires else None,
        }

    @classmethod
    def from_json(cls, doc: Any) -> TokenRecord:
        expires = doc.get("expires")
        return cls(
            name=str(doc["name"]),
            role=Role[str(doc["role"]).upper()],
            digest=str(doc["sha256"]),
            created=datetime.fromisoformat(str(doc["created"])),
            expires=datetime.fromisoformat(str(expires)) if expires else None,
        )

    def public(self, now: datetime) -> dict[str, Any]:
        """What ``token list`` shows: no digest."""
        return {
            "name": self.name,
            "role": self.role.label,
            "created": self.created.isoformat(timespec="seconds"),
            "expires": self.expires.isoformat(timespec="seconds") if self.expires else None,
            "expired": self.expired(now),
        }


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_token() -> str:
    return PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode("ascii")


def tokens_path(state_directory: str | os.PathLike[str]) -> Path:
    return Path(state_directory) / TOKENS_FILE


def utc_now() -> datetime:
    return datetime.now(UTC)


def _parse(data: bytes, path: Path) -> list[TokenRecord]:
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
            raise ValueError("not a token file of version 1")
        return [TokenRecord.from_json(item) for item in doc["tokens"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TokenFileError(
            f"the token file {path} is damaged: {exc}",
            hint="remove it and create the tokens again with 'lifeboat token create'",
        ) from None


def read_tokens(path: Path) -> list[TokenRecord]:
    """The tokens of the file at ``path`` (none when it does not exist)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TokenFileError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    return _parse(data, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise TokenFileError(f"cannot write the token file {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, records: list[TokenRecord]) -> None:
    body = json.dumps({"version": FORMAT_VERSION, "tokens": [r.to_json() for r in records]}, indent=1).encode()
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body + b"\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise TokenFileError(f"cannot write the token file {path}: {exc.strerror or exc}") from None


def create_token(
    path: Path, name: str, role: Role, *, expires_in: timedelta | None = None, now: datetime | None = None
) -> tuple[str, TokenRecord]:
    """A new token named ``name``: its text (shown once, kept nowhere) and its record."""
    if not NAME.fullmatch(name):
        raise UsageError(
            f"invalid token name {name!r}",
            hint="a name is 1–64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
        )
    if expires_in is not None and expires_in <= timedelta(0):
        raise UsageError("--expires must be a positive duration", hint="e.g. 90d, 12h, 1y")
    moment = now or utc_now()
    token = new_token()
    record = TokenRecord(
        name=name,
        role=role,
        digest=digest_of(token),
        created=moment.replace(microsecond=0),
        expires=(moment + expires_in).replace(microsecond=0) if expires_in is not None else None,
    )
    with _locked(path):
        records = read_tokens(path)
        if any(r.name == name for r in records):
            raise TokenExists(f"a token named {name!r} exists already")
        _write(path, [*records, record])
    return token, record


def revoke_token(path: Path, name: str) -> TokenRecord:
    """Remove the token named ``name`` (the daemon refuses it from its next request)."""
    with _locked(path):
        records = read_tokens(path)
        found = [r for r in records if r.name == name]
        if not found:
            raise NoSuchToken(f"there is no token named {name!r}")
        _write(path, [r for r in records if r.name != name])
    return found[0]


class TokenStore:
    """The daemon's view of the token file: read again when it changed on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._records: list[TokenRecord] = []

    def _current(self) -> list[TokenRecord]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise TokenFileError(f"cannot read the token file {self.path}: {exc.strerror or exc}") from None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            if stamp != self._stamp:
                self._records = read_tokens(self.path)
                self._stamp = stamp
            return self._records

    def find(self, token: str) -> TokenRecord | None:
        """The record of ``token`` (expired or not), None when the file does not hold it (a
        wrong or revoked token). Every record's digest is compared, each in constant time."""
        digest = digest_of(token)
        found: TokenRecord | None = None
        for record in self._current():
            if hmac.compare_digest(record.digest, digest):
                found = record
        return found

    def lookup(self, token: str, now: datetime | None = None) -> TokenRecord | None:
        """The live (not expired, not revoked) record of ``token``, else None."""
        found = self.find(token)
        if found is None or found.expired(now or utc_now()):
            return None
        return found


__all__ = [
    "NoSuchToken",
    "Role",
    "TokenExists",
    "TokenFileError",
    "TokenRecord",
    "TokenStore",
    "create_token",
    "read_tokens",
    "revoke_token",
    "tokens_path",
]
