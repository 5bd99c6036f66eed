"""Discord: a channel webhook (its URL is the secret). The message is one embed in the event's
colour: title, description, fields, timestamp, and the dashboard as the title's link."""

from __future__ import annotations

import json
from typing import Any

from lifeboat.app.observability.alerts.message import Message
from lifeboat.app.observability.alerts.webpost import post

# Discord's limits: title 256, description 4096, 25 fields of name 256 and value 1024.
TITLE_MAX = 256
DESCRIPTION_MAX = 4096


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def payload(message: Message) -> dict[str, Any]:
    embed: dict[str, Any] = {
        "title": _cut(message.subject, TITLE_MAX),
        "color": int(message.colour.lstrip("#"), 16),
        "timestamp": message.at.isoformat(),
        "footer": {"text": _cut(" · ".join(p for p in (message.host, message.key) if p) or "Lifeboat", 2048)},
    }
    if message.detail:
        embed["description"] = _cut(message.detail, DESCRIPTION_MAX)
    if message.facts:
        embed["fields"] = [
            {"name": _cut(label, 256), "value": _cut(value, 1024) or "-", "inline": True}
            for label, value in message.facts[:25]
        ]
    if message.dashboard_url:
        embed["url"] = message.dashboard_url
    # No mention of anyone, whatever a title says (@everyone in a job's error).
    return {"username": "Lifeboat", "embeds": [embed], "allowed_mentions": {"parse": []}}


class DiscordChannel:
    kind = "discord"

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self._url = url

    def __repr__(self) -> str:
        return f"DiscordChannel({self.name!r})"

    def send(self, message: Message) -> None:
        post(self._url, json.dumps(payload(message)).encode())
