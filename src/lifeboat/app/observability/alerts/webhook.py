"""A generic webhook: the message as JSON (:meth:`Message.document`), POSTed to a URL.

With a secret, two headers let the receiver check that Lifeboat sent it, unchanged and
recently (docs/alerts.md has the recipe): ``X-Lifeboat-Timestamp`` (Unix seconds) and
``X-Lifeboat-Signature: sha256=<hex>``, the HMAC-SHA256 with the secret of
``<timestamp>.`` followed by the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

from lifeboat.app.observability.alerts.message import Message
from lifeboat.app.observability.alerts.webpost import post

SIGNATURE_HEADER = "X-Lifeboat-Signature"
TIMESTAMP_HEADER = "X-Lifeboat-Timestamp"
EVENT_HEADER = "X-Lifeboat-Event"


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of ``<timestamp>.<body>`` keyed by ``secret``."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookChannel:
    kind = "webhook"

    def __init__(
        self, name: str, url: str, secret: bytes | None, *, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.name = name
        self._url = url
        self._secret = secret
        self._wall_clock = wall_clock  # the receiver compares the timestamp with its own clock

    def __repr__(self) -> str:
        return f"WebhookChannel({self.name!r})"

    def send(self, message: Message) -> None:
        body = json.dumps(message.document(), separators=(",", ":")).encode()
        headers = {EVENT_HEADER: message.event}
        if self._secret is not None:
            timestamp = str(int(self._wall_clock()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = signature(self._secret, timestamp, body)
        post(self._url, body, headers)
