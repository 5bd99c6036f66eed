"""Messages: each built from structured fields only — the event, the condition's key, title
and detail, the source's configured name, times, the dashboard link. Never from the
environment, a repository URL or a configuration value, so nothing secret can reach a message
but what a caller wrote into a condition (and conditions carry one-line errors, which hold none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from lifeboat.app.observability.alerts.condition import Condition
from lifeboat.app.observability.alerts.state import Decision

if TYPE_CHECKING:
    from lifeboat.core.drill import DrillResult

HEADLINES = {
    "failure": "FAILURE",
    "objective": "OBJECTIVE MISSED",
    "recovery": "RECOVERED",
    "reminder": "STILL FAILING",
    "drill": "DRILL",
    "test": "TEST",
    "suppressed": "SUPPRESSED",
}
# Colours as the chat services show them beside a message.
COLOURS = {"critical": "#d93025", "warning": "#f29900", "recovery": "#1e8e3e", "info": "#1a73e8"}


@dataclass(frozen=True)
class Message:
    event: str  # failure | objective | recovery | reminder | drill | test | suppressed
    severity: str  # info | warning | critical: what a channel's min_severity compares
    title: str  # one line
    at: datetime
    detail: str = ""  # a few lines
    key: str | None = None
    source: str | None = None
    dashboard_url: str | None = None
    facts: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # labelled values ("failing since", "…")
    status: str = ""  # drill: passed | missed | failed
    host: str | None = None  # the host whose daemon sent it (several hosts may share a channel)

    @property
    def headline(self) -> str:
        if self.event == "drill" and self.status:
            return f"DRILL {self.status.upper()}"
        return HEADLINES.get(self.event, self.event.upper())

    @property
    def subject(self) -> str:
        """``[Lifeboat] FAILURE: backup of db failed`` — the e-mail subject, the chat title."""
        return f"[Lifeboat] {self.headline}: {self.title}"

    @property
    def colour(self) -> str:
        if self.event == "recovery" or (self.event in ("drill", "test") and self.severity == "info"):
            return COLOURS["recovery"] if self.event != "test" else COLOURS["info"]
        return COLOURS.get(self.severity, COLOURS["critical"])

    @property
    def good(self) -> bool:
        """Good news (a recovery, a passed drill)."""
        return self.event == "recovery" or (self.event == "drill" and self.severity == "info")

    def text(self) -> str:
        """The message as plain text (e-mail body, Apprise body)."""
        lines = [self.subject]
        if self.detail:
            lines += ["", self.detail]
        if self.facts:
            lines.append("")
            lines += [f"{label}: {value}" for label, value in self.facts]
        lines.append("")
        lines.append(f"at: {_time(self.at)}" + (f" on {self.host}" if self.host else ""))
        if self.key:
            lines.append(f"condition: {self.key}")
        if self.dashboard_url:
            lines.append(f"dashboard: {self.dashboard_url}")
        return "\n".join(lines)

    def document(self) -> dict[str, object]:
        """The message as JSON (the generic webhook's body)."""
        return {
            "version": 1,
            "event": self.event,
            "severity": self.severity,
            "headline": self.headline,
            "title": self.title,
            "detail": self.detail,
            "key": self.key,
            "source": self.source,
            "status": self.status or None,
            "at": _time(self.at),
            "host": self.host,
            "facts": dict(self.facts),
            "dashboard_url": self.dashboard_url,
        }


def _time(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def _span(seconds: float) -> str:
    from lifeboat.core.drill import seconds_text

    return seconds_text(max(0.0, seconds))


def condition_message(decision: Decision, condition: Condition, now: datetime, dashboard_url: str | None) -> Message:
    """The message for a state machine's event about ``condition``."""
    assert decision.event is not None
    state, previous = decision.state, decision.previous
    facts: list[tuple[str, str]] = []
    severity = condition.severity
    if decision.event == "recovery" and previous is not None:
        severity = previous.severity  # a channel that got the failure gets its recovery
        facts.append(("was failing for", _span((now - previous.since).total_seconds())))
        facts.append(("it was", previous.title))
    elif decision.event == "reminder":
        facts.append(("failing for", _span((now - state.since).total_seconds())))
    if condition.source:
        facts.insert(0, ("source", condition.source))
    return Message(
        event=decision.event,
        severity=severity,
        title=condition.title,
        at=now,
        detail=condition.detail,
        key=condition.key,
        source=condition.source,
        dashboard_url=dashboard_url,
        facts=tuple(facts),
    )


def drill_message(result: DrillResult, now: datetime, dashboard_url: str | None) -> Message:
    """One message per drill: passed (info), missed an objective (warning) or failed (critical)."""
    from lifeboat.core.drill import FAILED, PASSED

    severity = "info" if result.status == PASSED else "critical" if result.status == FAILED else "warning"
    facts: list[tuple[str, str]] = [("source", result.source), ("kind", result.kind)]
    rto = result.rto
    if rto is not None:
        objective = f" (objective {_span(result.rto_objective)})" if result.rto_objective is not None else ""
        facts.append(("RTO", _span(rto) + objective))
    if result.achieved_rpo is not None:
        objective = f" (objective {_span(result.rpo_objective)})" if result.rpo_objective is not None else ""
        facts.append(("achieved RPO", _span(result.achieved_rpo) + objective))
    if result.snapshot:
        facts.append(("snapshot", result.snapshot[:8]))
    detail = "\n".join(result.reasons[:5])
    verdict = {PASSED: "passed", FAILED: "failed"}.get(result.status, "missed an objective")
    return Message(
        event="drill",
        severity=severity,
        title=f"drill of {result.source} {verdict}",
        at=now,
        detail=detail,
        key=f"drill:{result.source}",
        source=result.source,
        dashboard_url=dashboard_url,
        facts=tuple(facts),
        status=result.status,
    )


def probe_message(now: datetime, dashboard_url: str | None, channel: str) -> Message:
    return Message(
        event="test",
        severity="info",
        title=f"test message to channel {channel}",
        at=now,
        detail="Sent by 'lifeboat alerts test': this channel reaches you.",
        dashboard_url=dashboard_url,
    )


def suppressed_message(count: int, period_seconds: float, now: datetime, dashboard_url: str | None) -> Message:
    noun = "alert" if count == 1 else "alerts"
    return Message(
        event="suppressed",
        severity="warning",
        title=f"{count} {noun} suppressed",
        at=now,
        detail=f"The rate limit of this channel held back {count} {noun} in the last {_span(period_seconds)}; "
        "the dashboard and the daemon's log have them.",
        dashboard_url=dashboard_url,
    )
