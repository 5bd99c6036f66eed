"""From an HTTP status and a service's error code to a Lifeboat storage error.

Cloud providers (S3, Azure, GCS) report failures as a status plus a short code
(``SlowDown``, ``AccessDenied``, ``ContainerNotFound``…). This module decides, once for
all of them, which failures are worth retrying and which are permanent, and builds a
short message from the status and code only: SDK messages can embed request URLs, and a
URL may carry a SAS signature, so they are never shown.
"""

from __future__ import annotations

import re

from lifeboat.errors import (
    StorageError,
    StorageNotFound,
    StoragePermissionDenied,
    StorageQuotaExceeded,
    TransientStorageError,
)

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 509})
# Codes some servers send with a non-5xx status that are still worth retrying.
TRANSIENT_CODES = frozenset(
    {"SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "ServerBusy", "OperationTimedOut", "InternalError"}
)
QUOTA_CODES = frozenset(
    {
        "QuotaExceeded",
        "XMinioStorageFull",
        "StorageFull",
        "InsufficientStorage",
        "AccountLimitExceeded",
        "ContainerQuotaExceeded",
    }
)
MISSING_CONTAINER_CODES = frozenset({"NoSuchBucket", "ContainerNotFound", "ContainerBeingDeleted"})
LOCKED_CODES = frozenset({"BlobImmutableDueToPolicy", "ObjectLocked", "InvalidObjectState"})
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "AuthorizationFailure",
        "AuthenticationFailed",
        "AuthorizationPermissionMismatch",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "AccountIsDisabled",
    }
)

_STATUS_RE = re.compile(r"status(?: code)?:? (\d{3})")
_CODE_RE = re.compile(r"<Code>([^<]{1,100})</Code>")
_SECRET_RE = re.compile(
    r"(?i)(sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|accountkey|sharedaccesssignature)=[^&;\s\"']+"
)


def status_of(text: str) -> int | None:
    """The HTTP status a provider's error message reports, if any."""
    match = _STATUS_RE.search(text)
    return int(match.group(1)) if match else None


def code_of(text: str) -> str | None:
    """The service error code in an XML error body quoted by the message, if any."""
    match = _CODE_RE.search(text)
    return match.group(1) if match else None


def redact(text: str) -> str:
    """Remove signatures and keys a message may quote."""
    return _SECRET_RE.sub(r"\1=<redacted>", text)


def detail(exc: BaseException) -> Exception:
    """The SDK's own message, redacted, to chain under a translated error (shown with -v)."""
    return RuntimeError(f"{type(exc).__name__}: {redact(str(exc))[:2000]}")


def from_status(
    status: int | None, code: str | None, what: str, *, container: str = "bucket", name: str = ""
) -> StorageError:
    """The error for a failed request ``what`` that got ``status`` and service ``code``."""
    detail = " ".join(str(p) for p in (f"HTTP {status}" if status else None, code) if p) or "failed"
    if code in MISSING_CONTAINER_CODES:
        return StorageError(
            f"{what}: the {container} {name!r} does not exist" if name else f"{what}: the {container} does not exist",
            hint=f"create the {container} first, or check the repository URL",
        )
    if code in QUOTA_CODES or status == 507:
        return StorageQuotaExceeded(f"{what}: the storage is full or over quota ({detail})")
    if code in LOCKED_CODES:
        return StoragePermissionDenied(
            f"{what}: refused by the storage's retention or archive state ({detail})",
            hint="the object is under a retention lock or in an archive storage class",
        )
    if status in TRANSIENT_STATUSES or code in TRANSIENT_CODES or (status is not None and status >= 500):
        return TransientStorageError(f"{what}: {detail}")
    if status in (401, 403) or code in DENIED_CODES:
        return StoragePermissionDenied(f"{what}: access denied ({detail})")
    if status == 404:
        return StorageNotFound(f"{what}: no such object")
    return StorageError(f"{what}: {detail}")
