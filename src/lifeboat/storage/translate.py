"""From an HTTP status and a service's error code to a Lifeboat storage error.

Cloud providers (S3, Azure, GCS) report failures as a status plus a short code
(``SlowDown``, ``AccessDenied``, ``ContainerNotFound``…). This module decides, once for
all of them, which failures are worth retrying and which are permanent, and builds a
short message from the status and code only. SDK messages are never shown, not even with
``-v``: they can quote a presigned URL, a signed request's headers, an access key id or a
session token (S3 echoes the canonical request of a refused signature). What ``-v`` shows
of a provider's failure is a :class:`~lifeboat.errors.ProviderFailure` built by
:func:`detail` from facts: exception types, status, service code and errno.
"""

from __future__ import annotations

import re

from lifeboat.errors import (
    ProviderFailure,
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
# A service error code is an identifier (``SlowDown``, ``AccessDenied``); anything else in
# its place is not shown.
_IDENTIFIER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9.:_-]{0,63}$")


def status_of(text: str) -> int | None:
    """The HTTP status a provider's error message reports, if any."""
    match = _STATUS_RE.search(text)
    return int(match.group(1)) if match else None


def code_of(text: str) -> str | None:
    """The service error code in an XML error body quoted by the message, if any."""
    match = _CODE_RE.search(text)
    return service_code(match.group(1)) if match else None


def service_code(value: object) -> str | None:
    """``value`` if it is a service error code (an identifier), else None."""
    return value if isinstance(value, str) and _IDENTIFIER_RE.match(value) else None


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def detail(exc: BaseException, *, status: int | None = None, code: str | None = None) -> ProviderFailure:
    """What may be shown of an SDK's exception: the cause to chain under a translated error.

    The exception's type and those of its causes, the HTTP status and service code (given,
    or found in the message), and an operating-system error's errno; never the message."""
    text = str(exc)
    status = status if status is not None else status_of(text)
    code = service_code(code) if code is not None else code_of(text)
    facts = [f"HTTP {status}" if status else "", code or ""]
    chain: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(chain) < 8:
        seen.add(id(current))
        name = _type_name(current)
        if isinstance(current, OSError) and current.errno is not None and type(current).__module__ == "builtins":
            name += f" [Errno {current.errno}] {current.strerror}"
        chain.append(name)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    shown = " ".join(f for f in facts if f)
    return ProviderFailure(" <- ".join(chain) + (f" ({shown})" if shown else ""))


def from_status(
    status: int | None, code: str | None, what: str, *, container: str = "bucket", name: str = ""
) -> StorageError:
    """The error for a failed request ``what`` that got ``status`` and service ``code``."""
    code = service_code(code)
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
