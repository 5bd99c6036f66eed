"""What every channel is: a name, a kind, and ``send`` that delivers one message or raises
:class:`DeliveryFailed` with one line that names no secret (no URL, token or password)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lifeboat.app.observability.alerts.condition import severity_rank
from lifeboat.app.observability.alerts.message import Message

# Seconds an HTTP receiver or an SMTP relay may take to answer one attempt.
SEND_TIMEOUT = 20.0
# Messages about the alerting itself go to every channel, whatever its filter.
ALWAYS = ("test", "suppressed")


class DeliveryFailed(Exception):
    """One attempt failed; the message is one line without a secret."""


class Channel(Protocol):
    name: str
    kind: str

    def send(self, message: Message) -> None: ...


@dataclass(frozen=True)
class ChannelFilter:
    events: frozenset[str]
    min_severity: str = "info"

    def wants(self, message: Message) -> bool:
        if message.event in ALWAYS:
            return True
        return message.event in self.events and severity_rank(message.severity) >= severity_rank(self.min_severity)


def failure_line(exc: BaseException) -> str:
    """One line for a network failure: the exception's type and, for an operating-system error,
    its text — never a library's message, which may quote a URL with its token."""
    import ssl

    from lifeboat.errors import describe

    cause: BaseException | None = exc
    for _ in range(8):  # the OS error under a library's wrapper says the most ("Connection refused")
        if cause is None:
            break
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {cause.verify_message}"
        if isinstance(cause, OSError) and cause.errno is not None and cause.strerror:
            return f"{type(exc).__name__}: {cause.strerror}"
        cause = cause.__cause__ or cause.__context__
    name = type(exc).__name__
    return describe(exc) if type(exc).__module__ == "builtins" else name
