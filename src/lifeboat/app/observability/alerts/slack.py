"""Slack: an incoming webhook (its URL is the secret). The message is an attachment in the
event's colour holding Block Kit blocks (header, the detail, the facts, a dashboard button);
``text`` is the fallback a notification shows."""

from __future__ import annotations

import json
from typing import Any

from lifeboat.app.observability.alerts.message import Message
from lifeboat.app.observability.alerts.webpost import post

# Slack's limits: a header's text 150 characters, a section's 3000, a field's 2000.
HEADER_MAX = 150
SECTION_MAX = 3000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Slack's mrkdwn gives ``&``, ``<`` and ``>`` meaning: a title cannot become a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(message: Message) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(message.subject, HEADER_MAX)}},
    ]
    if message.detail:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(_escape(message.detail), SECTION_MAX)}}
        )
    if message.facts:
        fields = [
            {"type": "mrkdwn", "text": _cut(f"*{_escape(label)}*\n{_escape(value)}", 2000)}
            for label, value in message.facts[:10]  # Slack takes at most 10 fields
        ]
        blocks.append({"type": "section", "fields": fields})
    context = " · ".join(
        part
        for part in (message.at.isoformat(timespec="seconds"), _escape(message.host or ""), _escape(message.key or ""))
        if part
    )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(context, SECTION_MAX)}]})
    if message.dashboard_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Dashboard"},
                        "url": message.dashboard_url,
                    }
                ],
            }
        )
    return {
        "text": _cut(message.subject, SECTION_MAX),
        "attachments": [{"color": message.colour, "fallback": _cut(message.subject, SECTION_MAX), "blocks": blocks}],
    }


class SlackChannel:
    kind = "slack"

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self._url = url

    def __repr__(self) -> str:
        return f"SlackChannel({self.name!r})"

    def send(self, message: Message) -> None:
        post(self._url, json.dumps(payload(message)).encode())
