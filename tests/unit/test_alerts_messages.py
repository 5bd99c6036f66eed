"""Alert messages: what each event says, and the payloads Slack and Discord accept."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.app.observability.alerts import discord, slack
from lifeboat.app.observability.alerts.condition import Condition
from lifeboat.app.observability.alerts.message import condition_message, drill_message, suppressed_message
from lifeboat.app.observability.alerts.state import decide
from lifeboat.core.drill import FAILED, MISSED, PASSED, DrillResult

T0 = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
DASHBOARD = "https://grafana.example.org/d/lifeboat"
FAILED_BACKUP = Condition(
    "job:backup:db", healthy=False, title="backup of db failed", detail="SourceError: pg_dump exited 1", source="db"
)


def _failure() -> tuple:
    decision = decide(None, FAILED_BACKUP, T0, timedelta(hours=4))
    return decision, condition_message(decision, FAILED_BACKUP, T0, DASHBOARD)


def test_a_failure_says_what_failed_where_and_links_the_dashboard() -> None:
    _, message = _failure()
    assert message.subject == "[Lifeboat] FAILURE: backup of db failed"
    text = message.text()
    assert "SourceError: pg_dump exited 1" in text
    assert "source: db" in text
    assert f"dashboard: {DASHBOARD}" in text
    assert "at: 2026-05-04T02:00:00Z" in text


def test_a_recovery_says_for_how_long_it_failed_and_keeps_the_failures_severity() -> None:
    failing = decide(None, FAILED_BACKUP, T0, None).state
    ok = Condition("job:backup:db", healthy=True, title="backup of db succeeded", source="db")
    decision = decide(failing, ok, T0 + timedelta(hours=2, minutes=10), None)
    message = condition_message(decision, ok, T0 + timedelta(hours=2, minutes=10), None)
    assert (message.event, message.severity, message.headline) == ("recovery", "critical", "RECOVERED")
    assert ("was failing for", "2h10m") in message.facts
    assert ("it was", "backup of db failed") in message.facts
    assert message.colour == "#1e8e3e"


def test_slack_payload_is_an_attachment_in_colour_with_valid_blocks() -> None:
    _, message = _failure()
    body = slack.payload(message)
    assert body["text"] == message.subject  # the notification's fallback
    (attachment,) = body["attachments"]
    assert re.fullmatch(r"#[0-9a-f]{6}", attachment["color"])
    types = [block["type"] for block in attachment["blocks"]]
    assert types[0] == "header" and attachment["blocks"][0]["text"]["type"] == "plain_text"
    assert set(types) <= {"header", "section", "context", "actions"}
    button = attachment["blocks"][-1]["elements"][0]
    assert (button["type"], button["url"]) == ("button", DASHBOARD)
    fields = next(b for b in attachment["blocks"] if "fields" in b)["fields"]
    assert len(fields) <= 10 and all(f["type"] == "mrkdwn" for f in fields)


def test_slack_cannot_be_made_to_mention_or_link_by_an_error_text() -> None:
    hostile = Condition("job:x", healthy=False, title="t", detail="<!channel> <https://evil|click> & more")
    message = condition_message(decide(None, hostile, T0, None), hostile, T0, None)
    section = slack.payload(message)["attachments"][0]["blocks"][1]["text"]["text"]
    assert "<" not in section and "&lt;!channel&gt;" in section


def test_discord_payload_is_one_embed_in_colour_that_mentions_nobody() -> None:
    _, message = _failure()
    body = discord.payload(message)
    (embed,) = body["embeds"]
    assert embed["title"] == message.subject and embed["url"] == DASHBOARD
    assert embed["color"] == int(message.colour[1:], 16) and 0 <= embed["color"] <= 0xFFFFFF
    assert datetime.fromisoformat(embed["timestamp"]) == T0
    assert embed["description"] == "SourceError: pg_dump exited 1"
    assert all(set(f) == {"name", "value", "inline"} and f["value"] for f in embed["fields"])
    assert body["allowed_mentions"] == {"parse": []}


def test_discord_limits_are_kept() -> None:
    long = Condition("job:x", healthy=False, title="t" * 500, detail="d" * 10000)
    embed = discord.payload(condition_message(decide(None, long, T0, None), long, T0, None))["embeds"][0]
    assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096


@pytest.mark.parametrize(
    ("status", "severity", "title"),
    [(PASSED, "info", "drill of db passed"), (MISSED, "warning", "drill of db missed an objective"),
     (FAILED, "critical", "drill of db failed")],
)  # fmt: skip
def test_a_drill_result_is_one_message_with_its_rto_against_the_objective(
    status: str, severity: str, title: str
) -> None:
    result = DrillResult(source="db", kind="postgres", target="latest", started=T0, status=status, rto_objective=600)
    for phase, seconds in (("plan", 5), ("restore", 700), ("replay", 30), ("start", 3), ("validate", 1)):
        result.add_phase(phase, seconds)
    if status != PASSED:
        result.reasons.append("RTO 12m18s is over the objective 10m00s")
    message = drill_message(result, T0, DASHBOARD)
    assert (message.event, message.severity, message.title) == ("drill", severity, title)
    assert ("RTO", "12m18s (objective 10m00s)") in message.facts
    assert message.headline == f"DRILL {status.upper()}"
    assert (status == PASSED) == ("RTO 12m18s is over" not in message.text())


def test_suppressed_says_how_many() -> None:
    message = suppressed_message(7, 3600, T0, None)
    assert message.title == "7 alerts suppressed"
    assert "1h" in message.detail
