"""The state machine of a condition: pure logic, the clock passed in.

- healthy → unhealthy: a *failure* (an *objective* event for an ``objective:…`` key);
- unhealthy → healthy: a *recovery*, only when a failure was sent for it;
- unhealthy and its severity rises (warning → critical): a failure again;
- unhealthy for ``reminder`` since the last message: a *reminder*;
- anything else (the same state again, the first observation healthy): nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from lifeboat.app.observability.alerts.condition import Condition, severity_rank


@dataclass(frozen=True)
class ConditionState:
    """What is remembered of a condition between observations (and daemon restarts)."""

    healthy: bool
    severity: str
    title: str
    since: datetime  # when it entered this state
    notified: datetime | None = None  # unhealthy: when its failure or last reminder was sent


@dataclass(frozen=True)
class Decision:
    event: str | None  # failure | objective | recovery | reminder | None
    state: ConditionState
    previous: ConditionState | None

    @property
    def changed(self) -> bool:
        """Whether the state worth remembering changed (what a restart must not forget)."""
        if self.previous is None:
            return True
        before, after = self.previous, self.state
        return (before.healthy, before.severity, before.notified) != (after.healthy, after.severity, after.notified)


def decide(
    previous: ConditionState | None, condition: Condition, now: datetime, reminder: timedelta | None
) -> Decision:
    """The event (if any) that observing ``condition`` at ``now`` calls for, and the new state."""
    if previous is None or previous.healthy:
        if condition.healthy:
            since = previous.since if previous is not None else now
            return Decision(None, ConditionState(True, condition.severity, condition.title, since), previous)
        event = "objective" if condition.objective else "failure"
        return Decision(event, ConditionState(False, condition.severity, condition.title, now, now), previous)
    if condition.healthy:
        recovery = "recovery" if previous.notified is not None else None
        return Decision(recovery, ConditionState(True, previous.severity, condition.title, now), previous)
    if severity_rank(condition.severity) > severity_rank(previous.severity):
        escalation = "objective" if condition.objective else "failure"
        state = replace(previous, severity=condition.severity, title=condition.title, notified=now)
        return Decision(escalation, state, previous)
    if (
        reminder is not None
        and reminder > timedelta(0)
        and (previous.notified is None or now - previous.notified >= reminder)
    ):
        return Decision("reminder", replace(previous, title=condition.title, notified=now), previous)
    return Decision(None, replace(previous, title=condition.title), previous)
