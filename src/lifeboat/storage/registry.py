"""Open a backend from a repository URL and compose the standard wrappers.

Grammar (docs/storage.md): a plain path or ``file:///path`` for the local filesystem;
``memory:`` for a throw-away in-process store; ``s3://bucket/prefix``,
``gs://bucket/prefix``, ``az://container/prefix`` and ``sftp://user@host:port/path``
for remote storage, each with ``?key=value`` options.

:data:`PROVIDERS` is the one list of schemes: each names the module that implements it,
imported (with its SDK) only when a URL of its scheme is checked or opened, so
``lifeboat --help`` never pays for an SDK. A provider module offers two functions, see
:class:`ProviderModule`.

Nothing here reads the process environment: whoever opens a backend passes ``env``, the
variables a provider may take credentials and endpoints from (the command line passes
``os.environ``; docs/storage.md lists what each provider reads).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol, cast
from urllib.parse import urlsplit

from lifeboat.errors import UsageError, option
from lifeboat.storage.base import Backend
from lifeboat.storage.readahead import DEFAULT_BUDGET, DEFAULT_WINDOW, ReadAheadBackend
from lifeboat.storage.readonly import ReadOnlyBackend
from lifeboat.storage.retry import RetryingBackend, RetryPolicy
from lifeboat.storage.url import GENERIC_OPTIONS, Options, OptionValue, StorageUrl, parse_url, shown_url

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


class ProviderModule(Protocol):
    """What a provider module offers (``lifeboat.storage.s3`` and the others)."""

    def check(self, url: StorageUrl) -> None:
        """Validate the URL and its provider options without connecting (UsageError if wrong)."""
        ...

    def connect(self, url: StorageUrl, env: Mapping[str, str]) -> Backend:
        """The provider's backend for ``url``; credentials and endpoints come from ``env``."""
        ...


@dataclass(frozen=True)
class Provider:
    """One storage scheme: the module that implements it, imported on first use."""

    module: str
    local: bool = False  # local storage: no read-ahead by default

    def load(self) -> ProviderModule:
        return cast(ProviderModule, importlib.import_module(self.module))


PROVIDERS: Mapping[str, Provider] = {
    "file": Provider("lifeboat.storage.local", local=True),
    "memory": Provider("lifeboat.storage.memory", local=True),
    "s3": Provider("lifeboat.storage.s3"),
    "gs": Provider("lifeboat.storage.gcs"),
    "az": Provider("lifeboat.storage.azure"),
    "sftp": Provider("lifeboat.storage.sftp"),
}


def scheme_of(url: str) -> str:
    """The provider scheme of a repository URL (``file`` for plain paths)."""
    head, sep, _ = url.partition(":")
    if sep and len(head) > 1 and _SCHEME_RE.match(head):
        return head.lower()
    return "file"


def _provider(url: str) -> Provider:
    scheme = scheme_of(url)
    try:
        return PROVIDERS[scheme]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise UsageError(
            f"unknown repository scheme {scheme!r} in {shown_url(url)}", hint=f"supported schemes: {known}"
        ) from None


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


@dataclass(frozen=True)
class _Parsed:
    """A URL split into what the registry applies (retries, read-ahead) and what the provider gets."""

    provider: Provider
    provider_url: StorageUrl
    retry: RetryPolicy
    read_ahead: int


def _parse(url: str, options: Mapping[str, OptionValue] | None, retry: RetryPolicy | None) -> _Parsed:
    provider = _provider(url)
    parsed = storage_url(url, options)
    generic = Options(parsed, parsed.options.keys())  # generic keys only; the provider checks the rest
    policy = retry or RetryPolicy()
    attempts = generic.integer("retries", policy.attempts - 1, low=0, high=100) + 1
    max_delay = generic.seconds("retry_max_delay", policy.max_delay)
    read_ahead = generic.size("read_ahead", 0 if provider.local else DEFAULT_WINDOW, low=0, high=1 << 30)
    provider_url = replace(parsed, options={k: v for k, v in parsed.options.items() if k not in GENERIC_OPTIONS})
    return _Parsed(provider, provider_url, replace(policy, attempts=attempts, max_delay=max_delay), read_ahead)


def _given(url: str) -> str:
    if not url:
        raise UsageError("no repository given", hint=f"pass {option('repo')} or set LIFEBOAT_REPO")
    return url


def check_url(url: str, options: Mapping[str, OptionValue] | None = None) -> None:
    """Validate a repository URL and its options without connecting (UsageError if wrong)."""
    parsed = _parse(url, options, None)
    parsed.provider.load().check(parsed.provider_url)


def open_provider(url: str, *, env: Mapping[str, str], options: Mapping[str, OptionValue] | None = None) -> Backend:
    """The provider's own backend for ``url``, without the wrappers :func:`open_backend` adds
    (for tests of a provider's contract and tools that measure the provider itself)."""
    parsed = _parse(_given(url), options, None)
    return parsed.provider.load().connect(parsed.provider_url, env)


def open_backend(
    url: str,
    *,
    env: Mapping[str, str],
    read_only: bool = False,
    retry: RetryPolicy | None = None,
    options: Mapping[str, OptionValue] | None = None,
) -> Backend:
    """The backend for ``url``, with retries and (optionally) read-only protection.

    ``env`` holds the variables a provider reads credentials and endpoints from (the
    caller's environment; docs/storage.md, "Credentials"). ``options`` (from the
    configuration file) add to and override the URL's ``?key=value`` options; ``retries``
    and ``retry_max_delay`` set the retry policy for any scheme, and ``read_ahead`` the
    window of ranged reads (on by default for remote storage; 0 = off).
    """
    parsed = _parse(_given(url), options, retry)
    backend: Backend = RetryingBackend(parsed.provider.load().connect(parsed.provider_url, env), parsed.retry)
    if parsed.read_ahead:
        window = parsed.read_ahead
        backend = ReadAheadBackend(backend, window=window, budget=max(DEFAULT_BUDGET, 16 * window))
    if read_only:
        backend = ReadOnlyBackend(backend)
    return backend
