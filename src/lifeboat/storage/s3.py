"""Repositories on Amazon S3 and S3-compatible servers: ``s3://bucket/prefix?options``.

The data plane (get, put, multipart, list) runs on obstore; boto3 does what obstore
cannot: credentials from the whole AWS chain (environment, profile, SSO, instance or
container role), Object Lock retention on writes, version-aware deletes and aborting a
failed multipart upload. Servers that answer a ranged read with status 200 (rclone) are
read through presigned URLs with urllib3, which accepts such answers (obstore does not).

With ``object_lock`` set, every object outside the exempt prefixes (the short-lived lock
files) is written under retention for ``object_lock_period``, and a delete removes the
object's version rather than hiding it behind a delete marker: the storage refuses it
while the retention lasts, and callers report what they could not remove yet.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from lifeboat.errors import (
    StorageAlreadyExists,
    StorageError,
    StorageNotFound,
    StoragePermissionDenied,
    TransientStorageError,
    UsageError,
)
from lifeboat.storage.base import STREAM_PIECE, check_name
from lifeboat.storage.objectstore import TUNING_OPTIONS, ObstoreBackend, Tuning
from lifeboat.storage.translate import code_of, detail, from_status
from lifeboat.storage.url import Options, StorageUrl

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import ObjectLockRetentionModeType
    from obstore.store import S3Credential

OPTIONS = TUNING_OPTIONS | {
    "endpoint",
    "region",
    "profile",
    "addressing",
    "sse",
    "sse_kms_key_id",
    "storage_class",
    "object_lock",
    "object_lock_period",
    "lock_exempt",
    "conditional_writes",
}
# Options whose values are never shown in a message (they name a key).
SECRET_OPTIONS = frozenset({"sse_kms_key_id"})
SSE_CHOICES = ("AES256", "aws:kms", "aws:kms:dsse")
LOCK_MODES = ("compliance", "governance")
DEFAULT_LOCK_EXEMPT = ("locks/",)


@dataclass(frozen=True)
class S3Settings:
    """Everything an S3 backend needs to know, parsed from the URL and the configuration."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    path_style: bool = False
    sse: str | None = None
    sse_kms_key_id: str | None = field(default=None, repr=False)
    storage_class: str | None = None
    lock_mode: str | None = None  # "COMPLIANCE" | "GOVERNANCE"
    lock_period: timedelta = timedelta(days=30)
    lock_exempt: tuple[str, ...] = DEFAULT_LOCK_EXEMPT
    conditional_writes: bool = True
    tuning: Tuning = field(default_factory=Tuning)

    @classmethod
    def from_url(cls, url: StorageUrl) -> S3Settings:
        options = Options(url, OPTIONS, secret=SECRET_OPTIONS)
        if not url.host:
            raise UsageError("the s3 URL names no bucket", hint="write s3://bucket/prefix")
        if url.user or url.port:
            raise UsageError(
                "an s3 URL names a bucket, not a server",
                hint="give the server as ?endpoint=https://host:port; credentials come from the environment",
            )
        endpoint = options.endpoint()
        addressing = options.choice("addressing", ("path", "virtual"), "path" if endpoint else "virtual")
        lock = options.choice("object_lock", LOCK_MODES)
        period = timedelta(seconds=options.seconds("object_lock_period", 30 * 86400.0))
        if options.text("object_lock_period") is not None and lock is None:
            raise UsageError("object_lock_period is set but object_lock is not", hint="add object_lock=compliance")
        exempt = options.text("lock_exempt")
        return cls(
            bucket=url.host,
            prefix=url.path.strip("/"),
            endpoint=endpoint,
            region=options.text("region"),
            profile=options.text("profile"),
            path_style=addressing == "path",
            sse=options.choice("sse", SSE_CHOICES),
            sse_kms_key_id=options.text("sse_kms_key_id"),
            storage_class=options.text("storage_class"),
            lock_mode=lock.upper() if lock else None,
            lock_period=period,
            lock_exempt=tuple(p for p in exempt.split(",") if p) if exempt is not None else DEFAULT_LOCK_EXEMPT,
            conditional_writes=options.boolean("conditional_writes", True),
            tuning=Tuning.from_options(options),
        )

    @property
    def location(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} at {self.endpoint}" if self.endpoint else where

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name


def _translate_boto(exc: Exception, what: str, bucket: str) -> StorageError:
    """Map a botocore exception to a storage error."""
    from botocore import exceptions as be

    if isinstance(exc, be.ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code")
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
            return StorageAlreadyExists(f"{what}: object already exists")
        if code in ("NoSuchKey", "NotFound") or (status == 404 and code in (None, "404")):
            return StorageNotFound(f"{what}: no such object")
        return from_status(status, code if code and not code.isdigit() else None, what, name=bucket)
    if isinstance(exc, (be.NoCredentialsError, be.PartialCredentialsError, be.ProfileNotFound)):
        return StoragePermissionDenied(f"{what}: no usable AWS credentials ({type(exc).__name__})")
    if isinstance(exc, (be.ConnectionError, be.HTTPClientError, be.ReadTimeoutError)):
        return TransientStorageError(f"{what}: the storage did not answer (network error or timeout)")
    return StorageError(f"{what}: {type(exc).__name__}")


class S3Backend(ObstoreBackend):
    """Objects in an S3 bucket under a prefix."""

    container_word = "bucket"

    def __init__(self, settings: S3Settings, *, env: Mapping[str, str]) -> None:
        """``env``: the variables to take keys, region and CA bundle from (docs/storage.md,
        "Credentials"); without keys there, boto3's credential chain finds them."""
        from obstore.store import S3Store

        self.settings = settings
        self._ca_bundle = env.get("AWS_CA_BUNDLE") or None
        self._session: Any = None
        config: dict[str, Any] = {"virtual_hosted_style_request": not settings.path_style}
        if settings.profile is None and env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            # Keys in the environment: no need to load boto3 (it costs a third of a second,
            # which every 'wal-push' would pay).
            config["access_key_id"] = env["AWS_ACCESS_KEY_ID"]
            config["secret_access_key"] = env["AWS_SECRET_ACCESS_KEY"]
            if env.get("AWS_SESSION_TOKEN"):
                config["token"] = env["AWS_SESSION_TOKEN"]
            region = settings.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
            provider = None
        else:
            session = self._boto_session()
            try:
                credentials = session.get_credentials()
            except Exception as exc:
                raise _translate_boto(exc, "open s3 credentials", settings.bucket) from detail(exc)
            if credentials is None:
                raise StoragePermissionDenied(
                    f"no AWS credentials found for {settings.location}",
                    hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE (or ?profile=), "
                    "or run with an instance or container role",
                )
            region = settings.region or session.region_name or "us-east-1"
            provider = _SessionCredentials(credentials)
        self._region = region
        config["region"] = region
        if settings.endpoint:
            config["endpoint"] = settings.endpoint
        if settings.sse:
            config["server_side_encryption"] = settings.sse
        if settings.sse_kms_key_id:
            config["sse_kms_key_id"] = settings.sse_kms_key_id
        store = S3Store(
            settings.bucket,
            prefix=settings.prefix or None,
            client_options=settings.tuning.client_options(allow_http=bool(settings.endpoint)),
            retry_config=settings.tuning.retry_config(),
            credential_provider=provider,
            **config,
        )
        attributes = {"Storage-Class": settings.storage_class} if settings.storage_class else None
        super().__init__(
            store,
            location=settings.location,
            container=settings.bucket,
            tuning=settings.tuning,
            attributes=attributes,
        )
        self._client_guard = threading.Lock()
        self._client_instance: S3Client | None = None
        self._ranges_via_url = False  # the server answers ranged reads with 200: see _range_fallback
        self._http_guard = threading.Lock()
        self._http_pool: Any = None

    def _boto_session(self) -> Any:
        """The boto3 session (the whole AWS credential chain), made on first use."""
        if self._session is None:
            import boto3

            try:
                self._session = boto3.Session(profile_name=self.settings.profile)
            except Exception as exc:
                raise _translate_boto(exc, "open s3 credentials", self.settings.bucket) from detail(exc)
        return self._session

    # --- the boto3 control plane ---------------------------------------------------------
    def _client(self) -> S3Client:
        with self._client_guard:
            if self._client_instance is None:
                from botocore.config import Config

                tuning = self.settings.tuning
                self._client_instance = self._boto_session().client(
                    "s3",
                    endpoint_url=self.settings.endpoint,
                    region_name=self._region,
                    config=Config(
                        connect_timeout=tuning.connect_timeout,
                        read_timeout=tuning.read_timeout,
                        retries={"max_attempts": 1, "mode": "standard"},
                        s3={"addressing_style": "path" if self.settings.path_style else "virtual"},
                        max_pool_connections=max(10, tuning.connections * tuning.part_concurrency),
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                    ),
                )
            return self._client_instance

    def _boto(self, exc: Exception, what: str) -> StorageError:
        return _translate_boto(exc, what, self.settings.bucket)

    # --- ranged reads from servers that answer them with 200 -------------------------------
    @property
    def _streams_ranges(self) -> bool:
        return not self._ranges_via_url

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if self._ranges_via_url and length > 0:
            return self._range_fallback(name, offset, length)
        return super().get_range(name, offset, length)

    def _http(self) -> Any:
        """A urllib3 pool for presigned reads, with the backend's timeouts (made on first use)."""
        with self._http_guard:
            if self._http_pool is None:
                import urllib3

                tuning = self.settings.tuning
                self._http_pool = urllib3.PoolManager(
                    maxsize=max(4, tuning.connections * tuning.part_concurrency),
                    timeout=urllib3.Timeout(connect=tuning.connect_timeout, read=tuning.read_timeout),
                    retries=False,  # one retry policy for the whole program: RetryingBackend's
                    ca_certs=self._ca_bundle,
                )
            return self._http_pool

    def _range_fallback(self, name: str, offset: int, length: int) -> bytes:
        """One ranged GET on a presigned URL, accepting 206, or 200 with or without Content-Range
        (the streamed read's, joined)."""
        return b"".join(self._stream_without_ranges(name, offset, length))

    def _stream_without_ranges(self, name: str, offset: int, length: int) -> Iterator[bytes]:
        """One presigned GET for the whole range, its body read a piece at a time: the range
        when the server honours it (206, or 200 with a Content-Range), else the whole object
        with the bytes before ``offset`` skipped as they arrive.

        The signature is computed locally by obstore with the store's own credentials; the
        URL carries it, so neither the URL nor a message quoting it is ever shown."""
        import obstore
        import urllib3

        self._ranges_via_url = True
        check_name(name)
        what = f"get {name}"
        try:
            url = obstore.sign(self._store, "GET", name, timedelta(minutes=15))
        except Exception as exc:
            raise self._fail(exc, what) from detail(exc)
        transport = TransientStorageError(f"{what}: the storage did not answer (network error or timeout)")
        try:
            response = self._http().request(
                "GET",
                url,
                headers={"Range": f"bytes={offset}-{offset + length - 1}"},
                redirect=False,
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise transport from detail(exc)
        try:
            if response.status == 416:
                return  # the object exists and ends before ``offset``
            if response.status not in (200, 206):
                text = response.read(2000).decode("utf-8", errors="replace")
                raise from_status(response.status, code_of(text), what, name=self.settings.bucket)
            content_range = response.headers.get("Content-Range") or ""
            skip = 0 if content_range.startswith(f"bytes {offset}-") else offset  # the whole object came back
            left = length
            while left > 0:
                try:
                    piece = response.read(STREAM_PIECE)
                except urllib3.exceptions.HTTPError as exc:
                    raise transport from detail(exc)
                if not piece:
                    return
                if skip:
                    dropped = min(skip, len(piece))
                    piece, skip = piece[dropped:], skip - dropped
                if piece:
                    piece = piece[:left]
                    left -= len(piece)
                    yield piece
        finally:
            if response.length_remaining:  # stopped early (the range's end, or a failure):
                response.close()  # a connection with a body left unread is not reused
            else:
                response.release_conn()

    # --- writes ----------------------------------------------------------------------------
    def _locked(self, name: str) -> bool:
        return self.settings.lock_mode is not None and not name.startswith(self.settings.lock_exempt)

    def put(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        check_name(name)
        if if_absent and not self.settings.conditional_writes:
            # The server ignores If-None-Match: check first (not atomic; see docs/storage.md).
            try:
                self.stat(name)
            except StorageNotFound:
                pass
            else:
                raise StorageAlreadyExists(f"put {name}: object already exists")
        if self._locked(name):
            self._put_locked(name, data, if_absent=if_absent and self.settings.conditional_writes)
            return
        super().put(name, data, if_absent=if_absent and self.settings.conditional_writes)

    def retain_until(self, now: datetime | None = None) -> datetime:
        """The retain-until date a write made ``now`` receives."""
        return (now or datetime.now(UTC)) + self.settings.lock_period

    def _put_locked(self, name: str, data: bytes | bytearray | memoryview, *, if_absent: bool) -> None:
        """One PutObject carrying the retention (S3 requires a checksum with it)."""
        settings = self.settings
        params: dict[str, Any] = {
            "Bucket": settings.bucket,
            "Key": settings.key(name),
            "Body": bytes(data),
            "ObjectLockMode": settings.lock_mode,
            "ObjectLockRetainUntilDate": self.retain_until(),
            "ChecksumAlgorithm": "SHA256",
        }
        if if_absent:
            params["IfNoneMatch"] = "*"
        if settings.storage_class:
            params["StorageClass"] = settings.storage_class
        if settings.sse:
            params["ServerSideEncryption"] = settings.sse
        if settings.sse_kms_key_id:
            params["SSEKMSKeyId"] = settings.sse_kms_key_id
        try:
            self._client().put_object(**params)
        except Exception as exc:
            error = self._boto(exc, f"put {name}")
            if "InvalidRequest" in str(exc) and "objectlock" in str(exc).lower().replace(" ", ""):
                error = StorageError(
                    f"put {name}: the bucket {settings.bucket!r} does not have Object Lock enabled",
                    hint="create the bucket with Object Lock enabled, or drop the object_lock option",
                )
            raise error from detail(exc)

    def _after_failed_multipart(self, name: str) -> None:
        """Abort every unfinished multipart upload of ``name``, so no hidden parts stay billed."""
        key = self.settings.key(name)
        try:
            client = self._client()
            listing = client.list_multipart_uploads(Bucket=self.settings.bucket, Prefix=key)
            for upload in listing.get("Uploads", []):
                if upload.get("Key") == key and "UploadId" in upload:
                    client.abort_multipart_upload(Bucket=self.settings.bucket, Key=key, UploadId=upload["UploadId"])
        except Exception:  # best effort: the bucket's lifecycle rule is the backstop (docs/storage.md)
            return

    def incomplete_uploads(self) -> list[str]:
        """Keys of multipart uploads started and never completed or aborted (for checks and tests)."""
        try:
            listing = self._client().list_multipart_uploads(
                Bucket=self.settings.bucket, Prefix=self.settings.key("") if self.settings.prefix else ""
            )
        except Exception as exc:
            raise self._boto(exc, "list multipart uploads") from detail(exc)
        return [str(u.get("Key", "")) for u in listing.get("Uploads", [])]

    # --- deletes ----------------------------------------------------------------------------
    def delete(self, name: str) -> None:
        if self.settings.lock_mode is None:
            super().delete(name)
            return
        self._delete_version(name)

    def _delete_version(self, name: str) -> None:
        """Remove the current version itself (a versioned bucket would only hide it)."""
        check_name(name)
        settings = self.settings
        client = self._client()
        try:
            head = client.head_object(Bucket=settings.bucket, Key=settings.key(name))
        except Exception as exc:
            raise self._boto(exc, f"delete {name}") from detail(exc)
        until = head.get("ObjectLockRetainUntilDate")
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            raise StoragePermissionDenied(f"delete {name}: the object is under a legal hold")
        if until is not None and until > datetime.now(UTC):
            mode = str(head.get("ObjectLockMode", "")).lower() or "retention"
            raise StoragePermissionDenied(
                f"delete {name}: protected by object lock ({mode}) until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
                hint="it can be removed once the retention has passed; run prune again then",
            )
        version = head.get("VersionId")
        try:
            if version and version != "null":
                client.delete_object(Bucket=settings.bucket, Key=settings.key(name), VersionId=version)
            else:
                client.delete_object(Bucket=settings.bucket, Key=settings.key(name))
        except Exception as exc:
            raise self._boto(exc, f"delete {name}") from detail(exc)

    # --- retention ------------------------------------------------------------------------------
    def retention(self, name: str) -> tuple[str | None, datetime | None]:
        """The object's lock mode and retain-until date, read with HeadObject."""
        check_name(name)
        try:
            head = self._client().head_object(Bucket=self.settings.bucket, Key=self.settings.key(name))
        except Exception as exc:
            raise self._boto(exc, f"stat {name}") from detail(exc)
        return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")

    @property
    def lock_period(self) -> timedelta | None:
        """How long new objects stay locked (the ObjectLock capability); None without object_lock."""
        return self.settings.lock_period if self.settings.lock_mode else None

    def extend_lock(self, name: str, until: datetime, *, to: datetime | None = None) -> bool:
        return self.extend_retention(name, until, to=to)

    def extend_retention(self, name: str, until: datetime, *, to: datetime | None = None) -> bool:
        """Lock ``name`` until at least ``until`` (moving the lock to ``to`` when it must move);
        False if it was already locked that long."""
        if self.settings.lock_mode is None or not self._locked(name):
            return False
        mode, current = self.retention(name)
        if current is not None and current >= until:
            return False
        until = max(until, to) if to is not None else until
        lock_mode = cast("ObjectLockRetentionModeType", mode or self.settings.lock_mode)
        try:
            self._client().put_object_retention(
                Bucket=self.settings.bucket,
                Key=self.settings.key(name),
                Retention={"Mode": lock_mode, "RetainUntilDate": until},
            )
        except Exception as exc:
            raise self._boto(exc, f"extend retention of {name}") from detail(exc)
        return True

    def close(self) -> None:
        with self._client_guard:
            if self._client_instance is not None:
                self._client_instance.close()
                self._client_instance = None
        with self._http_guard:
            if self._http_pool is not None:
                self._http_pool.clear()
                self._http_pool = None
        super().close()


class _SessionCredentials:
    """Feeds obstore the boto3 session's credentials (refreshed by botocore when they expire)."""

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials

    def __repr__(self) -> str:
        return "_SessionCredentials(<secret>)"

    def __call__(self) -> S3Credential:
        frozen = self._credentials.get_frozen_credentials()
        return {
            "access_key_id": frozen.access_key,
            "secret_access_key": frozen.secret_key,
            "token": frozen.token,
            "expires_at": datetime.now(UTC) + timedelta(minutes=10),
        }


# --- the provider (lifeboat.storage.registry) ---------------------------------------------------
def check(url: StorageUrl) -> None:
    S3Settings.from_url(url)


def connect(url: StorageUrl, env: Mapping[str, str]) -> S3Backend:
    return S3Backend(S3Settings.from_url(url), env=env)
