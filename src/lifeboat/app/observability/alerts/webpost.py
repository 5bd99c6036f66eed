"""One JSON POST with httpx: the common part of the Slack, Discord and webhook channels.

httpx logs each request's URL at INFO, and a webhook's URL is its secret: its loggers are
kept at WARNING (they never log a URL there)."""

from __future__ import annotations

import logging

from lifeboat.app.observability.alerts.channel import SEND_TIMEOUT, DeliveryFailed, failure_line

USER_AGENT = "lifeboat-alerts"


def quiet_http_logs() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


def post(url: str, body: bytes, headers: dict[str, str] | None = None, *, timeout: float = SEND_TIMEOUT) -> int:
    """POST ``body`` (JSON) to ``url``; the status code of a 2xx answer, else :class:`DeliveryFailed`."""
    import httpx

    quiet_http_logs()
    sent = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    try:
        response = httpx.post(url, content=body, headers=sent, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(failure_line(exc)) from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"HTTP {response.status_code} {response.reason_phrase}".strip())
    return response.status_code
