"""Repositories on an SSH server: ``sftp://user@host:port/path``.

Runs on asyncssh in one background event-loop thread; the Backend methods submit
coroutines to it, so many threads can have requests in flight on one SSH connection.
Authentication is by key only (``?identity=`` files, the default ``~/.ssh/id_*`` keys,
or the agent at ``SSH_AUTH_SOCK``) and the server's host key must be in ``known_hosts``.
A put writes a temporary file beside the target, syncs it (``fsync@openssh.com``) and
renames it into place: ``posix-rename`` replaces atomically; plain SFTP rename refuses
an existing target, which makes put-if-absent atomic. A lost connection is reopened on
the next request; every request has a timeout. New files get the mode of the repository's
``config`` (``0600`` unless opened to a group) and directories that of its root; when the
login may (it is root on the server), they also get the root directory's owner.

A path is absolute (``sftp://host/srv/backups``) or, after ``/~/``, relative to the
login directory (``sftp://host/~/backups``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import pwd
import stat as stat_module
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from lifeboat.core.tokens import token_hex
from lifeboat.errors import (
    StorageAlreadyExists,
    StorageError,
    StorageNotFound,
    StoragePermissionDenied,
    StorageQuotaExceeded,
    TransientStorageError,
    UsageError,
)
from lifeboat.storage.base import TEMP_PREFIX, ObjectInfo, check_name, check_temporary_name
from lifeboat.storage.translate import detail
from lifeboat.storage.url import Options, StorageUrl

if TYPE_CHECKING:
    import asyncssh

T = TypeVar("T")
_FILE_MODE = 0o600
OPTIONS = frozenset({"identity", "known_hosts", "connections", "connect_timeout", "timeout", "fsync"})


def login_name(env: Mapping[str, str]) -> str:
    """The local user name as ``getpass.getuser`` finds it, from ``env`` rather than the process."""
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if env.get(variable):
            return env[variable]
    return pwd.getpwuid(os.getuid()).pw_name


@dataclass(frozen=True)
class SftpSettings:
    host: str
    path: str  # absolute, or relative to the login directory
    user: str
    port: int = 22
    identities: tuple[str, ...] = ()
    known_hosts: str | None = None
    connections: int = 2  # packs uploading at once; each is held in memory (32 MiB by default)
    connect_timeout: float = 15.0
    timeout: float = 300.0
    fsync: bool = True
    shown_path: str = field(default="", compare=False)

    @classmethod
    def from_url(cls, url: StorageUrl, env: Mapping[str, str] | None = None) -> SftpSettings:
        """``env`` gives the login name when the URL names no user (as ``ssh`` takes it)."""
        options = Options(url, OPTIONS)
        if not url.host:
            raise UsageError("the sftp URL names no host", hint="write sftp://user@host:port/path")
        raw = url.path
        if raw in ("", "/"):
            raise UsageError(
                "the sftp URL names no directory", hint="write sftp://host/srv/repo, or sftp://host/~/repo for ~/repo"
            )
        home_relative = raw == "/~" or raw.startswith("/~/")
        path = (raw[3:].rstrip("/") or ".") if home_relative else (raw.rstrip("/") or "/")
        identity = options.text("identity")
        default = cls(host="", path="", user="")
        return cls(
            host=url.host,
            path=path,
            user=url.user or login_name(env or {}),
            port=url.port or 22,
            identities=tuple(p for p in identity.split(",") if p) if identity else (),
            known_hosts=options.text("known_hosts"),
            connections=options.integer("connections", default.connections, high=64),
            connect_timeout=options.seconds("connect_timeout", default.connect_timeout),
            timeout=options.seconds("timeout", default.timeout),
            fsync=options.boolean("fsync", True),
            shown_path=raw.rstrip("/"),
        )

    @property
    def location(self) -> str:
        port = f":{self.port}" if self.port != 22 else ""
        return f"sftp://{self.user}@{self.host}{port}{self.shown_path or '/' + self.path}"


def _translate(exc: BaseException, what: str) -> StorageError:
    import asyncssh

    if isinstance(exc, (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath)):
        return StorageNotFound(f"{what}: no such object")
    if isinstance(exc, (asyncssh.SFTPPermissionDenied, asyncssh.SFTPWriteProtect)):
        return StoragePermissionDenied(f"{what}: permission denied by the server")
    if isinstance(exc, (asyncssh.SFTPNoSpaceOnFilesystem, asyncssh.SFTPQuotaExceeded)):
        return StorageQuotaExceeded(f"{what}: no space left on the server")
    if isinstance(exc, asyncssh.SFTPFileAlreadyExists):
        return StorageAlreadyExists(f"{what}: object already exists")
    if isinstance(exc, (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection)):
        return TransientStorageError(f"{what}: the SSH connection was lost")
    if isinstance(exc, asyncssh.SFTPError):
        reason = str(exc.reason or "failure")
        if "space" in reason.lower() or "quota" in reason.lower():
            return StorageQuotaExceeded(f"{what}: {reason}")
        return StorageError(f"{what}: the server refused ({reason})")
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return StorageError(
            f"{what}: the server's host key is not trusted",
            hint="add the host key to known_hosts after checking its fingerprint "
            "(ssh-keyscan -p PORT HOST), or point ?known_hosts= at a file that has it",
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return StoragePermissionDenied(
            f"{what}: the server refused the login",
            hint="check the user, ?identity= key files or the SSH agent, and the server's authorized_keys",
        )
    if isinstance(exc, (asyncssh.DisconnectError, asyncssh.ChannelOpenError, OSError, EOFError)):
        return TransientStorageError(f"{what}: the SSH connection failed ({type(exc).__name__})")
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, FutureTimeout)):
        return TransientStorageError(f"{what}: the server did not answer in time")
    return StorageError(f"{what}: {type(exc).__name__}")


@dataclass
class _RemoteTree:
    """The owner and modes of a repository on the server, and whether this login may give the owner."""

    uid: int | None
    gid: int | None
    file_mode: int
    dir_mode: int
    chown: bool | None = None  # None: not known yet (learned from the first file created)

    async def _give(self, target: Any, attrs: Any) -> None:
        """Give ``target`` (a path's client or an open file) the root's owner, if it lacks it and we may."""
        import asyncssh

        if self.uid is None or self.gid is None or self.chown is False:
            return
        if self.chown is None and attrs.uid == self.uid:
            self.chown = False  # we log in as the owner: what we create is already its
            return
        if attrs.uid == self.uid:
            return
        try:
            await target(uid=self.uid, gid=self.gid)
        except (asyncssh.SFTPPermissionDenied, asyncssh.SFTPFailure, asyncssh.SFTPOpUnsupported):
            self.chown = False  # another, unprivileged login: its files stay its own
            return
        self.chown = True

    async def settle(self, handle: asyncssh.SFTPClientFile) -> None:
        """Give a file just created the repository's owner and mode (a umask must not narrow it)."""
        if self.file_mode != _FILE_MODE:
            await handle.chmod(self.file_mode)
        if self.chown is not False:
            await self._give(handle.chown, await handle.stat())

    async def settle_directory(self, sftp: asyncssh.SFTPClient, path: str) -> None:
        attrs = await sftp.stat(path)
        if attrs.permissions is not None and attrs.permissions & 0o2777 != self.dir_mode:
            await sftp.chmod(path, self.dir_mode)
        if self.chown is not False:
            await self._give(lambda **ids: sftp.chown(path, **ids), attrs)


class _LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="lifeboat-sftp", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Awaitable[T], timeout: float) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class SftpBackend:
    """Objects as files below a directory of an SSH server."""

    def __init__(self, settings: SftpSettings) -> None:
        self.settings = settings
        self._loop = _LoopThread()
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._connecting: asyncio.Lock | None = None
        self._directories: set[str] = set()
        self._tree: _RemoteTree | None = None  # learned at the first write
        self._fsync = settings.fsync
        self._closed = False

    @property
    def location(self) -> str:
        return self.settings.location

    @property
    def connections(self) -> int:
        return self.settings.connections

    # --- the connection ----------------------------------------------------------------------
    async def _client(self) -> asyncssh.SFTPClient:
        import asyncssh

        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._sftp is not None:
                return self._sftp
            settings = self.settings
            options: dict[str, Any] = {
                "username": settings.user,
                "port": settings.port,
                "connect_timeout": settings.connect_timeout,
                "login_timeout": settings.connect_timeout,
                "keepalive_interval": 15,
                "keepalive_count_max": 4,
            }
            if settings.identities:
                options["client_keys"] = list(settings.identities)
            if settings.known_hosts:
                options["known_hosts"] = settings.known_hosts
            conn = await asyncssh.connect(settings.host, **options)
            try:
                sftp = await conn.start_sftp_client()
            except BaseException:
                conn.close()
                raise
            self._conn, self._sftp = conn, sftp
            return sftp

    async def _reset(self) -> None:
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            conn.close()

    def _run(self, what: str, operation: Callable[[asyncssh.SFTPClient], Awaitable[T]]) -> T:
        if self._closed:
            raise StorageError(f"{what}: the backend is closed")

        async def guarded() -> T:
            sftp = await self._client()
            return await operation(sftp)

        try:
            return self._loop.submit(asyncio.wait_for(guarded(), self.settings.timeout), self.settings.timeout + 5)
        except StorageError:
            raise
        except Exception as exc:
            error = _translate(exc, what)
            if isinstance(error, TransientStorageError):  # the connection is suspect: reopen it next time
                asyncio.run_coroutine_threadsafe(self._reset(), self._loop.loop)
            raise error from detail(exc)

    def _path(self, name: str) -> str:
        return posixpath.join(self.settings.path, check_name(name))

    # --- the contract --------------------------------------------------------------------------
    def get(self, name: str) -> bytes:
        path = self._path(name)

        async def read(sftp: asyncssh.SFTPClient) -> bytes:
            async with sftp.open(path, "rb") as handle:
                return bytes(cast(bytes, await handle.read()))

        return self._run(f"get {name}", read)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        path = self._path(name)

        async def read(sftp: asyncssh.SFTPClient) -> bytes:
            async with sftp.open(path, "rb") as handle:
                return bytes(cast(bytes, await handle.read(length, offset))) if length else b""

        return self._run(f"get {name}", read)

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        import asyncssh

        path = self._path(name)
        directory = posixpath.dirname(path)
        payload = bytes(data)

        async def write(sftp: asyncssh.SFTPClient) -> None:
            tree = await self._learn_tree(sftp)
            if directory not in self._directories:
                await self._makedirs(sftp, directory, tree)
            tmp = posixpath.join(directory, f"{TEMP_PREFIX}{token_hex(8)}")
            published = False
            try:
                async with sftp.open(tmp, "wb", asyncssh.SFTPAttrs(permissions=tree.file_mode)) as handle:
                    await tree.settle(handle)
                    await handle.write(payload)
                    if self._fsync:
                        try:
                            await handle.fsync()
                        except asyncssh.SFTPOpUnsupported:
                            self._fsync = False
                if if_absent:
                    try:
                        await sftp.rename(tmp, path)
                    except (asyncssh.SFTPFailure, asyncssh.SFTPFileAlreadyExists):
                        if await sftp.exists(path):
                            raise StorageAlreadyExists(f"put {name}: object already exists") from None
                        raise
                else:
                    await sftp.posix_rename(tmp, path)
                published = True
            finally:
                if not published:
                    with contextlib.suppress(asyncssh.SFTPError, OSError):
                        await sftp.remove(tmp)

        self._run(f"put {name}", write)

    async def _learn_tree(self, sftp: asyncssh.SFTPClient) -> _RemoteTree:
        """The owner and modes of the repository (its root is created if missing)."""
        import asyncssh

        if self._tree is None:
            root = self.settings.path
            try:
                await sftp.makedirs(root, exist_ok=True)
            except asyncssh.SFTPFailure:
                if not await sftp.isdir(root):  # another writer may have made it meanwhile
                    raise
            attrs = await sftp.stat(root)
            try:
                config_mode = (await sftp.stat(posixpath.join(root, "config"))).permissions or _FILE_MODE
            except asyncssh.SFTPNoSuchFile:
                config_mode = _FILE_MODE
            self._tree = _RemoteTree(
                attrs.uid,
                attrs.gid,
                _FILE_MODE | (config_mode & 0o040),
                (attrs.permissions or 0o700) & 0o2777,
            )
            self._directories.add(root)
        return self._tree

    async def _makedirs(self, sftp: asyncssh.SFTPClient, directory: str, tree: _RemoteTree) -> None:
        """Create the missing directories down to ``directory``, each with the repository's mode and owner."""
        import asyncssh

        current = self.settings.path
        for part in posixpath.relpath(directory, current).split("/"):
            current = posixpath.join(current, part)
            if current in self._directories:
                continue
            try:
                await sftp.mkdir(current, asyncssh.SFTPAttrs(permissions=tree.dir_mode))
            except (asyncssh.SFTPFailure, asyncssh.SFTPFileAlreadyExists):
                if not await sftp.isdir(current):  # another writer may have made it meanwhile
                    raise
            else:
                await tree.settle_directory(sftp, current)
            self._directories.add(current)

    def delete(self, name: str) -> None:
        path = self._path(name)

        async def remove(sftp: asyncssh.SFTPClient) -> None:
            await sftp.remove(path)

        self._run(f"delete {name}", remove)

    def stat(self, name: str) -> ObjectInfo:
        path = self._path(name)

        async def stat(sftp: asyncssh.SFTPClient) -> ObjectInfo:
            attrs = await sftp.stat(path)
            if attrs.permissions is not None and not stat_module.S_ISREG(attrs.permissions):
                raise StorageNotFound(f"stat {name}: no such object")
            return ObjectInfo(name, int(attrs.size or 0), float(attrs.mtime or 0))

        return self._run(f"stat {name}", stat)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        yield from self._run(f"list {prefix or '/'}", self._walker(prefix, temporaries=False))

    def temporaries(self) -> Iterator[ObjectInfo]:
        yield from self._run("list temporary files", self._walker("", temporaries=True))

    def remove_temporary(self, name: str) -> None:
        import asyncssh

        check_temporary_name(name)
        path = self._path(name)

        async def remove(sftp: asyncssh.SFTPClient) -> None:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.remove(path)

        self._run(f"delete {name}", remove)

    def _walker(
        self, prefix: str, *, temporaries: bool
    ) -> Callable[[asyncssh.SFTPClient], Awaitable[Sequence[ObjectInfo]]]:
        """A walk of the directory ``prefix`` points into, for objects (or only temporary files)."""
        import asyncssh

        head = prefix.rpartition("/")[0]
        root = self.settings.path

        async def walk(sftp: asyncssh.SFTPClient) -> list[ObjectInfo]:
            found: list[ObjectInfo] = []
            pending = [head]
            while pending:
                relative = pending.pop()
                directory = posixpath.join(root, relative) if relative else root
                try:
                    entries = [entry async for entry in sftp.scandir(directory)]
                except asyncssh.SFTPNoSuchFile:
                    continue
                for entry in entries:
                    filename = str(entry.filename)
                    if filename in (".", ".."):
                        continue
                    name = f"{relative}/{filename}" if relative else filename
                    mode = entry.attrs.permissions or 0
                    if stat_module.S_ISDIR(mode):
                        if name.startswith(prefix) or prefix.startswith(name + "/"):
                            pending.append(name)
                    elif (
                        stat_module.S_ISREG(mode)
                        and name.startswith(prefix)
                        and filename.startswith(TEMP_PREFIX) == temporaries
                    ):
                        found.append(ObjectInfo(name, int(entry.attrs.size or 0), float(entry.attrs.mtime or 0)))
            return found

        return walk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # closing a broken connection is best effort
            self._loop.submit(self._reset(), 10)
        self._loop.stop()


# --- the provider (lifeboat.storage.registry) ---------------------------------------------------
def check(url: StorageUrl) -> None:
    SftpSettings.from_url(url)


def connect(url: StorageUrl, env: Mapping[str, str]) -> SftpBackend:
    """``env`` gives the default login name; asyncssh finds the agent (``SSH_AUTH_SOCK``) and
    the ``~/.ssh`` files itself."""
    return SftpBackend(SftpSettings.from_url(url, env))
