"""Apprise: one channel, many services (Telegram, Teams, ntfy, PagerDuty, …) by their Apprise
URLs, which hold tokens. A retry sends again to every URL of the channel (give a service its
own channel when a duplicate matters).

Apprise's own log lines can quote its URLs, and so can urllib3's (under requests, which Apprise
uses) at DEBUG: Apprise's logger is silenced, urllib3's kept at WARNING."""

from __future__ import annotations

import logging
from typing import Any

from lifeboat.app.observability.alerts.channel import DeliveryFailed
from lifeboat.app.observability.alerts.message import Message


def quiet_apprise_logs() -> None:
    """Apprise logs nothing at all (its records are never made: no handler can show them);
    urllib3 nothing below WARNING. Done before each use, in case logging was set up again since."""
    logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
    transport = logging.getLogger("urllib3")
    if transport.getEffectiveLevel() < logging.WARNING:
        transport.setLevel(logging.WARNING)


def split_urls(text: str) -> list[str]:
    """Apprise URLs from a file (one per line, ``#`` comments) or a variable (spaces or commas)."""
    urls: list[str] = []
    for line in text.splitlines():
        line = line.strip()  # noqa: PLW2901
        if not line or line.startswith("#"):
            continue
        urls += [part for part in line.replace(",", " ").split() if part]
    return urls


class AppriseChannel:
    kind = "apprise"

    def __init__(self, name: str, urls: list[str]) -> None:
        """Raises ``ValueError`` naming the position (never the text) of a URL Apprise does not know."""
        import apprise

        quiet_apprise_logs()
        self.name = name
        asset = apprise.AppriseAsset(app_id="Lifeboat", app_desc="Lifeboat backup alerts")
        self._apprise: Any = apprise.Apprise(asset=asset)
        if not urls:
            raise ValueError("no Apprise URL given")
        for number, url in enumerate(urls, 1):
            if not self._apprise.add(url):
                raise ValueError(
                    f"Apprise URL number {number} is not one Apprise knows (docs: github.com/caronc/apprise)"
                )
        self.count = len(urls)

    def __repr__(self) -> str:
        return f"AppriseChannel({self.name!r})"

    def send(self, message: Message) -> None:
        import apprise

        quiet_apprise_logs()
        kind = (
            apprise.NotifyType.SUCCESS
            if message.good
            else apprise.NotifyType.INFO
            if message.severity == "info"
            else apprise.NotifyType.WARNING
            if message.severity == "warning"
            else apprise.NotifyType.FAILURE
        )
        try:
            ok = self._apprise.notify(body=message.text(), title=message.subject, notify_type=kind)
        except Exception as exc:  # noqa: BLE001 - a plugin's failure is a failed delivery, whatever it raised
            raise DeliveryFailed(f"Apprise failed: {type(exc).__name__}") from None
        if not ok:
            raise DeliveryFailed(f"Apprise could not deliver to every one of its {self.count} URL(s)")
