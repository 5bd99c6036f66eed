"""The data plane the S3 and Azure providers share: a Backend over an obstore store.

Every request has a connect timeout, a stall (read) timeout and an overall timeout;
obstore's own retries are off, so :class:`~lifeboat.storage.retry.RetryingBackend` is
the one retry policy. Objects larger than the multipart threshold go up in parallel
parts. SDK errors are translated here, once, into the storage error classes.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from lifeboat.errors import (
    StorageAlreadyExists,
    StorageError,
    StorageNotFound,
    StoragePermissionDenied,
    TransientStorageError,
)
from lifeboat.storage.base import STREAM_PIECE, ObjectInfo, check_name, ranged_pieces
from lifeboat.storage.translate import code_of, detail, from_status, status_of
from lifeboat.storage.url import Options

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

MiB = 1024 * 1024
TUNING_OPTIONS = frozenset(
    {
        "connections",
        "part_size",
        "multipart_threshold",
        "part_concurrency",
        "connect_timeout",
        "read_timeout",
        "timeout",
    }
)
_TRANSPORT_WORDS = (
    "http error",
    "error sending request",
    "timed out",
    "timeout",
    "connection",
    "broken pipe",
    "reset by peer",
    "unexpected eof",
    "error decoding response body",
    "incomplete",
)


@dataclass(frozen=True)
class Tuning:
    """Parallelism and timeouts of one object-store backend (storage options of the same names)."""

    connections: int = 2  # packs a write session uploads at once (each in part_concurrency parts)
    part_size: int = 8 * MiB
    multipart_threshold: int = 16 * MiB
    part_concurrency: int = 4  # parts of one object in flight
    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # a response that stalls this long fails
    request_timeout: float = 600.0  # no request takes longer, whatever its size

    @classmethod
    def from_options(cls, options: Options) -> Tuning:
        default = cls()
        return cls(
            connections=options.integer("connections", default.connections, high=256),
            part_size=options.size("part_size", default.part_size, low=5 * MiB, high=5 * 1024 * MiB),
            multipart_threshold=options.size("multipart_threshold", default.multipart_threshold, low=5 * MiB),
            part_concurrency=options.integer("part_concurrency", default.part_concurrency, high=64),
            connect_timeout=options.seconds("connect_timeout", default.connect_timeout),
            read_timeout=options.seconds("read_timeout", default.read_timeout),
            request_timeout=options.seconds("timeout", default.request_timeout),
        )

    def client_options(self, *, allow_http: bool) -> ClientConfig:
        return {
            "allow_http": allow_http,
            "connect_timeout": timedelta(seconds=self.connect_timeout),
            "read_timeout": timedelta(seconds=self.read_timeout),
            "timeout": timedelta(seconds=self.request_timeout),
        }

    def retry_config(self) -> RetryConfig:
        # One retry policy for the whole program: RetryingBackend's.
        return {
            "max_retries": 0,
            "retry_timeout": timedelta(seconds=self.request_timeout),
            "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1), "base": 2},
        }


def translate(exc: Exception, what: str, *, container: str = "bucket", name: str = "") -> StorageError:
    """Map an obstore exception to a storage error (message built from status and code only)."""
    from obstore import exceptions as oe

    text = str(exc)
    status, code = status_of(text), code_of(text)
    if isinstance(exc, (oe.AlreadyExistsError, oe.PreconditionError)):
        return StorageAlreadyExists(f"{what}: object already exists")
    if isinstance(exc, (oe.NotFoundError, FileNotFoundError)):
        if code is not None and code not in {"NoSuchKey", "BlobNotFound"}:
            return from_status(status or 404, code, what, container=container, name=name)
        return StorageNotFound(f"{what}: no such object")
    if isinstance(exc, (oe.PermissionDeniedError, oe.UnauthenticatedError)):
        mapped = from_status(status or 403, code, what, container=container, name=name)
        if isinstance(mapped, StoragePermissionDenied):
            mapped.hint = "check the credentials and their permissions on the repository location"
        return mapped
    if status is not None or code is not None:
        return from_status(status, code, what, container=container, name=name)
    if any(word in text.lower() for word in _TRANSPORT_WORDS):
        return TransientStorageError(f"{what}: the storage did not answer (network error or timeout)")
    return StorageError(f"{what}: {type(exc).__name__}")


class ObstoreBackend:
    """A Backend over one obstore store (S3Store or AzureStore); subclasses add provider details."""

    container_word = "bucket"
    # S3 deletes a missing key without complaint; the contract wants StorageNotFound.
    delete_reports_missing = False

    def __init__(
        self,
        store: Any,
        *,
        location: str,
        container: str,
        tuning: Tuning,
        attributes: dict[str, str] | None = None,
    ) -> None:
        self._store = store
        self._location = location
        self._container = container
        self.tuning = tuning
        self._attributes = attributes or None
        self._closed = threading.Event()

    # --- identity ------------------------------------------------------------------------
    @property
    def location(self) -> str:
        return self._location

    @property
    def connections(self) -> int:
        return self.tuning.connections

    def _fail(self, exc: Exception, what: str) -> StorageError:
        return translate(exc, what, container=self.container_word, name=self._container)

    # --- reads ---------------------------------------------------------------------------
    def get(self, name: str) -> bytes:
        import obstore

        check_name(name)
        try:
            return bytes(obstore.get(self._store, name).bytes())
        except Exception as exc:
            raise self._fail(exc, f"get {name}") from detail(exc)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        import obstore

        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        check_name(name)
        if length == 0:
            self.stat(name)
            return b""
        try:
            return bytes(obstore.get_range(self._store, name, start=offset, length=length))
        except Exception as exc:
            text = str(exc)
            if status_of(text) == 416 or "StartTooLarge" in text or "but object was only" in text:
                return b""  # the object exists and ends before ``offset``
            if "non-partial response" in text:
                return self._range_fallback(name, offset, length)
            raise self._fail(exc, f"get {name}") from detail(exc)

    def get_stream(self, name: str, offset: int, length: int) -> Iterator[bytes]:
        """The range from one GET, delivered in pieces of about :data:`STREAM_PIECE` as they
        arrive (the response is read as it is consumed, so only a piece is held)."""
        import obstore

        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        check_name(name)
        if length == 0 or not self._streams_ranges:
            yield from self._stream_without_ranges(name, offset, length)
            return
        delivered = 0
        try:
            result = obstore.get(self._store, name, options={"range": (offset, offset + length)})
            for piece in result.stream(min_chunk_size=STREAM_PIECE):
                delivered += len(piece)
                yield bytes(piece)
        except Exception as exc:
            text = str(exc)
            if delivered == 0 and (status_of(text) == 416 or "StartTooLarge" in text or "but object was only" in text):
                return  # the object ends before ``offset``
            if delivered == 0 and "non-partial response" in text:
                yield from self._stream_without_ranges(name, offset, length)
                return
            raise self._fail(exc, f"get {name}") from detail(exc)

    def _stream_without_ranges(self, name: str, offset: int, length: int) -> Iterator[bytes]:
        """A streamed range from a server that does not answer ranged GETs as obstore expects
        (subclasses may do better than a ranged read per piece)."""
        return ranged_pieces(self, name, offset, length)

    @property
    def _streams_ranges(self) -> bool:
        """Whether a ranged GET may be streamed (a subclass says no for servers that answer
        ranges with the whole object)."""
        return True

    def _range_fallback(self, name: str, offset: int, length: int) -> bytes:
        """Read a range from a server that ignores Range headers (subclasses may do better)."""
        return self.get(name)[offset : offset + length]

    def stat(self, name: str) -> ObjectInfo:
        import obstore

        check_name(name)
        try:
            meta = obstore.head(self._store, name)
        except Exception as exc:
            raise self._fail(exc, f"stat {name}") from detail(exc)
        return ObjectInfo(name, int(meta["size"]), meta["last_modified"].timestamp())

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        import obstore

        # obstore lists whole path segments; list the prefix's directory and filter.
        directory = prefix.rpartition("/")[0]
        try:
            stream = obstore.list(self._store, prefix=directory or None, chunk_size=1000)
            for batch in stream:
                for meta in batch:
                    path = meta["path"]
                    if path.startswith(prefix) and not path.endswith("/"):
                        yield ObjectInfo(path, int(meta["size"]), meta["last_modified"].timestamp())
        except Exception as exc:
            raise self._fail(exc, f"list {prefix or '/'}") from detail(exc)

    def directories(self, prefix: str) -> builtins.list[str]:
        """The directories directly below ``prefix`` (storage.base.ListsDirectories): one
        delimited listing, not one of every object."""
        import obstore

        try:
            found = obstore.list_with_delimiter(self._store, prefix.rstrip("/"))
        except Exception as exc:
            raise self._fail(exc, f"list {prefix}") from detail(exc)
        return sorted(f"{name.rstrip('/')}/" for name in found["common_prefixes"] if name.startswith(prefix))

    # --- writes --------------------------------------------------------------------------
    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        import obstore

        check_name(name)
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        size = len(view)
        multipart = not if_absent and size > self.tuning.multipart_threshold
        try:
            if if_absent:
                obstore.put(self._store, name, view, mode="create", use_multipart=False, attributes=self._attributes)
            elif multipart:
                obstore.put(
                    self._store,
                    name,
                    view,
                    use_multipart=True,
                    chunk_size=self.tuning.part_size,
                    max_concurrency=self.tuning.part_concurrency,
                    attributes=self._attributes,
                )
            else:
                obstore.put(self._store, name, view, use_multipart=False, attributes=self._attributes)
        except Exception as exc:
            error = self._fail(exc, f"put {name}")
            if multipart:
                self._after_failed_multipart(name)
            raise error from detail(exc)

    def _after_failed_multipart(self, name: str) -> None:
        """Clean up after a multipart upload that failed (S3 aborts it)."""

    def delete(self, name: str) -> None:
        import obstore

        check_name(name)
        if not self.delete_reports_missing:
            self.stat(name)
        try:
            obstore.delete(self._store, name)
        except Exception as exc:
            raise self._fail(exc, f"delete {name}") from detail(exc)

    def close(self) -> None:
        self._closed.set()
