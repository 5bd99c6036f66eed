"""Open a backend from a repository URL and compose the standard wrappers.

Grammar (docs/storage.md): a plain path or ``file:///path`` for the local filesystem;
``memory:`` for a throw-away in-process store; ``s3://bucket/prefix``,
``gs://bucket/prefix``, ``az://container/prefix`` and ``sftp://user@host:port/path``
for remote storage, each with ``?key=value`` options. Providers register a scheme here;
their modules (and SDKs) are imported only when a URL of their scheme is opened.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from urllib.parse import urlsplit

from lifeboat.errors import UsageError
from lifeboat.storage.base import Backend
from lifeboat.storage.readahead import DEFAULT_BUDGET, DEFAULT_WINDOW, ReadAheadBackend
from lifeboat.storage.readonly import ReadOnlyBackend
from lifeboat.storage.retry import RetryingBackend, RetryPolicy
from lifeboat.storage.url import GENERIC_OPTIONS, Options, OptionValue, StorageUrl, parse_url, shown_url

Opener = Callable[[StorageUrl], Backend]
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_LOCAL_SCHEMES = frozenset({"file", "memory"})


def _open_local(url: StorageUrl) -> Backend:
    from lifeboat.storage.local import LocalBackend

    Options(url, ())
    return LocalBackend(url.path)


def _open_memory(url: StorageUrl) -> Backend:
    from lifeboat.storage.memory import MemoryBackend

    Options(url, ())
    return MemoryBackend()


def _open_s3(url: StorageUrl) -> Backend:
    from lifeboat.storage.s3 import open_s3

    return open_s3(url)


def _open_gcs(url: StorageUrl) -> Backend:
    from lifeboat.storage.gcs import open_gcs

    return open_gcs(url)


def _open_azure(url: StorageUrl) -> Backend:
    from lifeboat.storage.azure import open_azure

    return open_azure(url)


def _open_sftp(url: StorageUrl) -> Backend:
    from lifeboat.storage.sftp import open_sftp

    return open_sftp(url)


_PROVIDERS: dict[str, Opener] = {
    "file": _open_local,
    "memory": _open_memory,
    "s3": _open_s3,
    "gs": _open_gcs,
    "az": _open_azure,
    "sftp": _open_sftp,
}


def register_provider(scheme: str, opener: Opener) -> None:
    """Make ``scheme://…`` URLs open with ``opener``."""
    _PROVIDERS[scheme] = opener


def scheme_of(url: str) -> str:
    """The provider scheme of a repository URL (``file`` for plain paths)."""
    head, sep, _ = url.partition(":")
    if sep and len(head) > 1 and _SCHEME_RE.match(head):
        return head.lower()
    return "file"


def storage_url(url: str, options: Mapping[str, OptionValue] | None = None) -> StorageUrl:
    """Parse ``url`` with configured ``options``; local paths are taken literally."""
    scheme = scheme_of(url)
    if scheme == "memory":
        return StorageUrl("memory", "", "", options={k: str(v) for k, v in (options or {}).items()})
    if scheme == "file":
        path = url
        if url.startswith("file:"):
            parts = urlsplit(url)
            if "@" in parts.netloc:
                raise UsageError(
                    "the file URL contains user information (a name or a password)",
                    hint="write file:///absolute/path; credentials never go in a URL",
                )
            if parts.netloc not in ("", "localhost"):
                raise UsageError("the file URL names a host", hint="write file:///absolute/path")
            path = parts.path
        return StorageUrl("file", "", path, options={k: str(v) for k, v in (options or {}).items()})
    return parse_url(url, options)


def check_url(url: str, options: Mapping[str, OptionValue] | None = None) -> None:
    """Validate a repository URL and its options without connecting (UsageError if wrong)."""
    scheme = scheme_of(url)
    if scheme not in _PROVIDERS:
        known = ", ".join(sorted(_PROVIDERS))
        raise UsageError(
            f"unknown repository scheme {scheme!r} in {shown_url(url)}", hint=f"supported schemes: {known}"
        )
    parsed = storage_url(url, options)
    _retry_policy(parsed, None)
    Options(parsed, parsed.options.keys()).size("read_ahead", 0, low=0, high=1 << 30)
    provider_url = replace(parsed, options={k: v for k, v in parsed.options.items() if k not in GENERIC_OPTIONS})
    if scheme in _LOCAL_SCHEMES:
        Options(provider_url, ())
    elif scheme == "s3":
        from lifeboat.storage.s3 import S3Settings

        S3Settings.from_url(provider_url)
    elif scheme == "gs":
        from lifeboat.storage.gcs import GcsSettings

        GcsSettings.from_url(provider_url)
    elif scheme == "az":
        from lifeboat.storage.azure import AzureSettings

        AzureSettings.from_url(provider_url)
    elif scheme == "sftp":
        from lifeboat.storage.sftp import SftpSettings

        SftpSettings.from_url(provider_url)


def _retry_policy(url: StorageUrl, given: RetryPolicy | None) -> RetryPolicy:
    policy = given or RetryPolicy()
    options = Options(url, url.options.keys())  # generic keys only; the provider checks the rest
    attempts = options.integer("retries", policy.attempts - 1, low=0, high=100) + 1
    max_delay = options.seconds("retry_max_delay", policy.max_delay)
    return replace(policy, attempts=attempts, max_delay=max_delay)


def open_backend(
    url: str,
    *,
    read_only: bool = False,
    retry: RetryPolicy | None = None,
    options: Mapping[str, OptionValue] | None = None,
) -> Backend:
    """The backend for ``url``, with retries and (optionally) read-only protection.

    ``options`` (from the configuration file) add to and override the URL's ``?key=value``
    options; ``retries`` and ``retry_max_delay`` set the retry policy for any scheme, and
    ``read_ahead`` the window of ranged reads (on by default for remote storage; 0 = off).
    """
    if not url:
        raise UsageError("no repository given", hint="pass --repo or set LIFEBOAT_REPO")
    scheme = scheme_of(url)
    try:
        opener = _PROVIDERS[scheme]
    except KeyError:
        known = ", ".join(sorted(_PROVIDERS))
        raise UsageError(
            f"unknown repository scheme {scheme!r} in {shown_url(url)}", hint=f"supported schemes: {known}"
        ) from None
    parsed = storage_url(url, options)
    policy = _retry_policy(parsed, retry)
    generic = Options(parsed, parsed.options.keys())
    read_ahead = generic.size("read_ahead", 0 if scheme in _LOCAL_SCHEMES else DEFAULT_WINDOW, low=0, high=1 << 30)
    provider_url = replace(parsed, options={k: v for k, v in parsed.options.items() if k not in GENERIC_OPTIONS})
    backend: Backend = RetryingBackend(opener(provider_url), policy)
    if read_ahead:
        backend = ReadAheadBackend(backend, window=read_ahead, budget=max(DEFAULT_BUDGET, 16 * read_ahead))
    if read_only:
        backend = ReadOnlyBackend(backend)
    return backend
