"""Open a backend from a repository URL and compose the standard wrappers.

Grammar (docs/storage.md): a plain path or ``file:///path`` for the local filesystem;
``memory:`` for a throw-away in-process store. Providers register a scheme here; their
modules are imported only when a URL of their scheme is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from lifeboat.errors import UsageError
from lifeboat.storage.base import Backend
from lifeboat.storage.readonly import ReadOnlyBackend
from lifeboat.storage.retry import RetryingBackend, RetryPolicy


def _open_local(url: str) -> Backend:
    from lifeboat.storage.local import LocalBackend

    if url.startswith("file://"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"file URL {url!r} names a host", hint="write file:///absolute/path")
        return LocalBackend(parts.path)
    return LocalBackend(url)


def _open_memory(url: str) -> Backend:
    from lifeboat.storage.memory import MemoryBackend

    return MemoryBackend()


_PROVIDERS: dict[str, Callable[[str], Backend]] = {
    "file": _open_local,
    "memory": _open_memory,
}


def register_provider(scheme: str, opener: Callable[[str], Backend]) -> None:
    """Make ``scheme://…`` URLs open with ``opener``."""
    _PROVIDERS[scheme] = opener


def scheme_of(url: str) -> str:
    """The provider scheme of a repository URL (``file`` for plain paths)."""
    head, sep, _ = url.partition(":")
    if sep and head.isalpha() and len(head) > 1:
        return head.lower()
    return "file"


def open_backend(url: str, *, read_only: bool = False, retry: RetryPolicy | None = None) -> Backend:
    """The backend for ``url``, with retries and (optionally) read-only protection."""
    if not url:
        raise UsageError("no repository given", hint="pass --repo or set LIFEBOAT_REPO")
    scheme = scheme_of(url)
    try:
        opener = _PROVIDERS[scheme]
    except KeyError:
        known = ", ".join(sorted(_PROVIDERS))
        raise UsageError(
            f"unknown repository scheme {scheme!r} in {url!r}", hint=f"supported schemes: {known}"
        ) from None
    backend: Backend = RetryingBackend(opener(url), retry)
    if read_only:
        backend = ReadOnlyBackend(backend)
    return backend
