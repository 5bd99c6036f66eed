"""Repository URLs and the storage options they carry.

``scheme://[user@]host[:port]/path?key=value&…`` is parsed once into a :class:`StorageUrl`.
Options come from the URL's query and from the configuration file (which wins where
both name a key). A provider reads them through :class:`Options`, which converts each
value to its type and turns an unknown key or a malformed value into a usage error that
names the key. URLs never carry credentials: a password in the URL is refused, so a
location printed from a URL is always safe to show.

Secrets stay out of messages by construction, not by searching text for them: a parsed
URL is shown only through :meth:`StorageUrl.location` (also its ``str`` and ``repr``: no
query, and a URL with a password never parses), any other URL — a rejected one, an
``endpoint`` option — only through :func:`shown_url` (scheme, host, port and path), and the
value of an option a provider marks secret is never shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from lifeboat.core.units import parse_duration, parse_size
from lifeboat.errors import UsageError

# Options every URL accepts; the registry applies them, not the provider.
GENERIC_OPTIONS = frozenset({"retries", "retry_max_delay", "read_ahead"})

OptionValue = str | int | float | bool


def _text(value: OptionValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class StorageUrl:
    """A parsed repository URL; ``path`` has no leading slash for object stores."""

    scheme: str
    host: str
    path: str
    user: str | None = None
    port: int | None = None
    options: dict[str, str] = field(default_factory=dict)

    def location(self) -> str:
        """The URL without options: what a user recognises, and never a secret."""
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        path = f"/{self.path}" if self.path else ""
        return f"{self.scheme}://{user}{self.host}{port}{path}"

    def __str__(self) -> str:
        return self.location()

    def __repr__(self) -> str:
        return f"StorageUrl({self.location()!r})"


def shown_url(url: str) -> str:
    """``url`` as a message may show it: scheme, host, port and path — never the user
    information (a password, or a token given as the user) or the query (which may hold a
    signature or a token)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<a URL that cannot be parsed>"
    if not parts.scheme:
        return "<a value that is not a URL>"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def _split(url: str) -> SplitResult:
    """``urlsplit`` with its port read, or a usage error that quotes nothing of the URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it is the check
    except ValueError:
        raise UsageError(
            "malformed repository URL: its host or port cannot be read", hint="see docs/storage.md for the URL grammar"
        ) from None
    return parts


def parse_url(url: str, extra: Mapping[str, OptionValue] | None = None) -> StorageUrl:
    """Split ``url``; ``extra`` options (from the configuration) override the query's."""
    parts = _split(url)
    port = parts.port
    scheme = parts.scheme.lower()
    if parts.password is not None:
        raise UsageError(
            f"the {scheme} URL contains a password",
            hint="never put credentials in the URL; see docs/storage.md for the environment variables to use",
        )
    if parts.fragment:
        raise UsageError(f"the {scheme} URL has a '#' fragment", hint="options go after '?' as key=value pairs")
    options: dict[str, str] = {}
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise UsageError(
            f"malformed options in the {scheme} URL", hint="write options as ?key=value&key=value"
        ) from None
    for key, value in pairs:
        if key in options:
            raise UsageError(f"option {key!r} is given twice in the repository URL")
        options[key] = value
    for key, given in (extra or {}).items():
        options[key] = _text(given)
    host = unquote(parts.hostname or "")
    return StorageUrl(
        scheme=scheme,
        host=host,
        path=unquote(parts.path).lstrip("/") if scheme != "sftp" else unquote(parts.path),
        user=unquote(parts.username) if parts.username else None,
        port=port,
        options=options,
    )


class Options:
    """Typed access to a URL's options; every key must be one the provider knows.

    ``secret`` names the options whose values are credentials or identify a key: a
    message about them names the option, never its value."""

    def __init__(self, url: StorageUrl, known: Iterable[str], *, secret: Iterable[str] = ()) -> None:
        self._scheme = url.scheme
        self._values = dict(url.options)
        self._secret = frozenset(secret)
        allowed = set(known) | GENERIC_OPTIONS
        unknown = sorted(set(self._values) - allowed)
        if unknown:
            raise UsageError(
                f"unknown {url.scheme} storage option(s): {', '.join(unknown)}",
                hint=f"known options: {', '.join(sorted(allowed))} (docs/storage.md)",
            )

    def _bad(self, key: str, value: str, expected: str) -> UsageError:
        shown = "" if key in self._secret else f"={value!r}"
        return UsageError(f"{self._scheme} storage option {key}{shown}: expected {expected}")

    def endpoint(self, key: str = "endpoint") -> str | None:
        """An ``http://`` or ``https://`` server URL without credentials, query or fragment,
        with no trailing slash; shown in messages only as :func:`shown_url` shows it."""
        value = self.text(key)
        if value is None:
            return None
        prefix = f"{self._scheme} storage option {key}"
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - reading it is the check
        except ValueError:
            raise UsageError(f"{prefix}: its host or port cannot be read") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise UsageError(f"{prefix}: expected an http:// or https:// URL such as https://minio.example:9000")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise UsageError(
                f"{prefix} contains credentials ({shown_url(value)})",
                hint="credentials never go in a URL; see docs/storage.md for where each provider reads them",
            )
        if parts.query or parts.fragment:
            raise UsageError(
                f"{prefix} has a query or fragment ({shown_url(value)})",
                hint="give the server only: scheme, host, port and path",
            )
        return value.rstrip("/")

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self._values.get(key)
        return default if value is None or value == "" else value

    def choice(self, key: str, choices: Iterable[str], default: str | None = None) -> str | None:
        value = self.text(key)
        if value is None:
            return default
        allowed = list(choices)
        folded = {c.lower(): c for c in allowed}
        if value.lower() not in folded:
            raise self._bad(key, value, "one of " + ", ".join(allowed))
        return folded[value.lower()]

    def boolean(self, key: str, default: bool) -> bool:
        value = self.text(key)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise self._bad(key, value, "true or false")

    def integer(self, key: str, default: int, *, low: int = 1, high: int = 1 << 30) -> int:
        value = self.text(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise self._bad(key, value, "a whole number") from None
        if not low <= number <= high:
            raise self._bad(key, value, f"a number from {low} to {high}")
        return number

    def seconds(self, key: str, default: float) -> float:
        """A duration (``30s``, ``5min``) in seconds; a bare number means seconds."""
        value = self.text(key)
        if value is None:
            return default
        try:
            seconds = float(value) if value.replace(".", "", 1).isdigit() else parse_duration(value).total_seconds()
        except ValueError:
            raise self._bad(key, value, "a duration such as 30s, 5min or 2h") from None
        if seconds <= 0:
            raise self._bad(key, value, "a positive duration")
        return seconds

    def size(self, key: str, default: int, *, low: int = 1, high: int = 1 << 40) -> int:
        value = self.text(key)
        if value is None:
            return default
        try:
            number = parse_size(value)
        except ValueError:
            raise self._bad(key, value, "a size such as 8MiB") from None
        if not low <= number <= high:
            raise self._bad(key, value, f"a size from {low} to {high} bytes")
        return number
