"""Repositories in Google Cloud Storage: ``gs://bucket/prefix?options``.

Runs on google-cloud-storage (obstore's GCS path needs the XML API, which the only
emulator available for tests lacks). Credentials are Application Default Credentials:
``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default login``, or the
metadata server of a VM; ``STORAGE_EMULATOR_HOST`` points the client at an emulator.
Put-if-absent is ``ifGenerationMatch=0``; uploads carry a CRC32C the server checks.
Objects above 8 MiB go up as one resumable upload each (GCS has no parallel parts in
this API); parallelism comes from several uploads in flight.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lifeboat.errors import (
    StorageAlreadyExists,
    StorageError,
    StorageNotFound,
    StoragePermissionDenied,
    TransientStorageError,
    UsageError,
)
from lifeboat.storage.base import ObjectInfo, check_name
from lifeboat.storage.translate import detail, from_status
from lifeboat.storage.url import Options, StorageUrl

ENV_EMULATOR = "STORAGE_EMULATOR_HOST"
OPTIONS = frozenset({"project", "endpoint", "storage_class", "connections", "connect_timeout", "read_timeout"})


@dataclass(frozen=True)
class GcsSettings:
    bucket: str
    prefix: str = ""
    project: str | None = None
    endpoint: str | None = None
    storage_class: str | None = None
    connections: int = 2  # packs uploading at once; each is held in memory (32 MiB by default)
    connect_timeout: float = 10.0
    read_timeout: float = 120.0

    @classmethod
    def from_url(cls, url: StorageUrl) -> GcsSettings:
        options = Options(url, OPTIONS)
        if not url.host:
            raise UsageError("the gs URL names no bucket", hint="write gs://bucket/prefix")
        if url.user or url.port:
            raise UsageError("a gs URL names a bucket, not a server", hint="give a custom server as ?endpoint=URL")
        endpoint = options.endpoint()
        default = cls(bucket=url.host)
        return cls(
            bucket=url.host,
            prefix=url.path.strip("/"),
            project=options.text("project"),
            endpoint=endpoint,
            storage_class=options.text("storage_class"),
            connections=options.integer("connections", default.connections, high=256),
            connect_timeout=options.seconds("connect_timeout", default.connect_timeout),
            read_timeout=options.seconds("read_timeout", default.read_timeout),
        )

    @property
    def location(self) -> str:
        where = f"gs://{self.bucket}/{self.prefix}" if self.prefix else f"gs://{self.bucket}"
        return f"{where} at {self.endpoint}" if self.endpoint else where


def _translate(exc: BaseException, what: str, bucket: str, *, missing_means_bucket: bool = False) -> StorageError:
    """Map google-cloud-storage, google-auth and requests exceptions to storage errors.

    ``missing_means_bucket``: for listings and uploads a 404 can only mean the bucket."""
    import requests
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

    if isinstance(exc, gexc.PreconditionFailed):
        return StorageAlreadyExists(f"{what}: object already exists")
    if isinstance(exc, gexc.NotFound):
        if missing_means_bucket or ("bucket" in str(exc).lower() and "does not exist" in str(exc).lower()):
            return from_status(404, "NoSuchBucket", what, name=bucket)
        return StorageNotFound(f"{what}: no such object")
    if isinstance(exc, gexc.GoogleAPICallError):
        reason = getattr(exc, "reason", None)
        return from_status(exc.code, reason if isinstance(reason, str) else None, what, name=bucket)
    if isinstance(exc, InvalidResponse):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 412:
            return StorageAlreadyExists(f"{what}: object already exists")
        return from_status(status if isinstance(status, int) else None, None, what, name=bucket)
    if isinstance(exc, DataCorruption):
        return TransientStorageError(f"{what}: the transfer failed its CRC32C check")
    if isinstance(exc, (auth_exc.RefreshError, auth_exc.DefaultCredentialsError)):
        return StoragePermissionDenied(
            f"{what}: no usable Google credentials ({type(exc).__name__})",
            hint="set GOOGLE_APPLICATION_CREDENTIALS or run 'gcloud auth application-default login'",
        )
    if isinstance(exc, (auth_exc.TransportError, requests.ConnectionError, requests.Timeout)):
        return TransientStorageError(f"{what}: the storage did not answer (network error or timeout)")
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, ConnectionError, TimeoutError)):
        return TransientStorageError(f"{what}: the connection broke")
    return StorageError(f"{what}: {type(exc).__name__}")


class GcsBackend:
    """Objects in a GCS bucket under a prefix."""

    def __init__(self, settings: GcsSettings, *, env: Mapping[str, str]) -> None:
        """``env``: ``STORAGE_EMULATOR_HOST`` (an emulator, without credentials) is taken from
        it; Application Default Credentials are left to google-auth (docs/storage.md)."""
        from google.cloud import storage

        self.settings = settings
        emulator = None if settings.endpoint else env.get(ENV_EMULATOR) or None
        try:
            if emulator:
                from google.auth.credentials import AnonymousCredentials

                self._client = storage.Client(
                    project=settings.project,
                    credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                    client_options={"api_endpoint": emulator},
                )
            else:
                client_options = {"api_endpoint": settings.endpoint} if settings.endpoint else None
                self._client = storage.Client(project=settings.project, client_options=client_options)
        except Exception as exc:
            raise _translate(exc, f"open {settings.location}", settings.bucket) from detail(exc)
        self._bucket = self._client.bucket(settings.bucket)
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._guard = threading.Lock()

    @property
    def location(self) -> str:
        return self.settings.location

    @property
    def connections(self) -> int:
        return self.settings.connections

    def _key(self, name: str) -> str:
        check_name(name)
        return f"{self.settings.prefix}/{name}" if self.settings.prefix else name

    def _fail(self, exc: BaseException, what: str) -> StorageError:
        return _translate(exc, what, self.settings.bucket)

    def get(self, name: str) -> bytes:
        blob = self._bucket.blob(self._key(name))
        try:
            return bytes(blob.download_as_bytes(timeout=self._timeout, retry=None, checksum="crc32c"))
        except Exception as exc:
            raise self._fail(exc, f"get {name}") from detail(exc)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        from google.api_core import exceptions as gexc

        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        blob = self._bucket.blob(self._key(name))
        if length == 0:
            self.stat(name)
            return b""
        try:
            data = blob.download_as_bytes(
                start=offset, end=offset + length - 1, timeout=self._timeout, retry=None, checksum=None
            )
        except gexc.RequestRangeNotSatisfiable:
            return b""  # the object exists and ends before ``offset``
        except Exception as exc:
            raise self._fail(exc, f"get {name}") from detail(exc)
        return bytes(data[:length])

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        blob = self._bucket.blob(self._key(name))
        if self.settings.storage_class:
            blob.storage_class = self.settings.storage_class
        view = memoryview(data).cast("B")
        try:
            blob.upload_from_file(
                io.BytesIO(view),
                size=len(view),
                content_type="application/octet-stream",
                if_generation_match=0 if if_absent else None,
                timeout=self._timeout,
                retry=None,
                checksum="crc32c",
            )
        except Exception as exc:
            raise _translate(exc, f"put {name}", self.settings.bucket, missing_means_bucket=True) from detail(exc)

    def delete(self, name: str) -> None:
        blob = self._bucket.blob(self._key(name))
        try:
            blob.delete(timeout=self._timeout, retry=None)
        except Exception as exc:
            raise self._fail(exc, f"delete {name}") from detail(exc)

    def stat(self, name: str) -> ObjectInfo:
        try:
            blob = self._bucket.get_blob(self._key(name), timeout=self._timeout, retry=None)
        except Exception as exc:
            raise self._fail(exc, f"stat {name}") from detail(exc)
        if blob is None:
            raise StorageNotFound(f"stat {name}: no such object")
        return ObjectInfo(name, int(blob.size or 0), _mtime(blob))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = f"{self.settings.prefix}/" if self.settings.prefix else ""
        try:
            blobs = self._client.list_blobs(
                self.settings.bucket, prefix=base + prefix, timeout=self._timeout, retry=None, page_size=1000
            )
            for blob in blobs:
                name = str(blob.name)[len(base) :]
                if name and not name.endswith("/"):
                    yield ObjectInfo(name, int(blob.size or 0), _mtime(blob))
        except Exception as exc:
            what = f"list {prefix or '/'}"
            raise _translate(exc, what, self.settings.bucket, missing_means_bucket=True) from detail(exc)

    def close(self) -> None:
        with self._guard:
            self._client.close()


def _mtime(blob: Any) -> float:
    updated = blob.updated
    return float(updated.timestamp()) if updated is not None else 0.0


# --- the provider (lifeboat.storage.registry) ---------------------------------------------------
def check(url: StorageUrl) -> None:
    GcsSettings.from_url(url)


def connect(url: StorageUrl, env: Mapping[str, str]) -> GcsBackend:
    return GcsBackend(GcsSettings.from_url(url), env=env)
