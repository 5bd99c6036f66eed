"""Alerts: telling people when something goes wrong, and when it is fixed (docs/alerts.md).

Terms. A *condition* is something observed healthy or not under a stable key (a job, WAL
archiving, an objective). The *state machine* (:mod:`.state`) decides what to say about each
observation: a *failure*, an *objective* breach, a *recovery*, a *reminder*, or nothing. A
*message* (:mod:`.message`) is that event, or a drill's result, rendered from structured
fields only. A *channel* is one configured receiver (Slack, Discord, e-mail, a webhook, Apprise
URLs); *delivery* (:mod:`.delivery`) hands each message to each channel that wants it, in the
background, with retries and a rate limit. :class:`Alerter` ties them together for the daemon.
"""

from __future__ import annotations

from lifeboat.app.observability.alerts.alerter import Alerter, ChannelCheck, send_test_messages
from lifeboat.app.observability.alerts.condition import Condition, utc_now

__all__ = ["Alerter", "ChannelCheck", "Condition", "send_test_messages", "utc_now"]
