"""The alerter the daemon holds: conditions in, messages out, never in the caller's way.

:meth:`Alerter.observe` runs the state machine under a lock, saves the states when they change
(before any message goes out: a crash may lose a message, never repeat one), and queues the
message; delivery happens in the channels' threads. Nothing here raises into the caller:
a failure is one line through ``log``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from lifeboat.app.observability.alerts.condition import Condition, utc_now
from lifeboat.app.observability.alerts.message import Message, condition_message, drill_message, probe_message
from lifeboat.app.observability.alerts.state import ConditionState, decide
from lifeboat.app.observability.alerts.store import load_states, save_states

if TYPE_CHECKING:
    from lifeboat.app.observability.alerts.delivery import ChannelWorker
    from lifeboat.config.model import AlertsConfig
    from lifeboat.core.drill import DrillResult


LEAVE_GRACE = 0.2  # seconds of close's time kept for channels still busy to stop waiting to retry


def _ignore(line: str) -> None:
    del line


class Alerter:
    """Notifications for the daemon (docs/alerts.md). With ``config`` None it does nothing.

    Raises :class:`lifeboat.errors.ConfigError` at construction when a channel's secret cannot
    be read (a missing file or variable) or an Apprise URL is not valid; afterwards never."""

    def __init__(
        self,
        config: AlertsConfig | None,
        *,
        state_path: Path,
        environ: Mapping[str, str],
        clock: Callable[[], datetime] = utc_now,
        log: Callable[[str], None] | None = None,
        host: str | None = None,
        tick: float = 1.0,
    ) -> None:
        from lifeboat.core.units import parse_duration

        self._config = config
        self._state_path = Path(state_path)
        self._clock = clock
        self._log = log or _ignore
        self._lock = threading.Lock()
        self._workers: list[ChannelWorker] = []
        self._states: dict[str, ConditionState] = {}
        self._reminder: timedelta | None = None
        self._save_failed = False
        self._host = host  # named in every message: several hosts may report to one channel
        if config is None:
            return
        from lifeboat.app.observability.alerts.channels import build_channels
        from lifeboat.app.observability.alerts.delivery import ChannelWorker, DeliveryPolicy, never_raising

        self._log = never_raising(self._log)  # a log line that cannot be written never reaches the caller
        self._reminder = parse_duration(config.reminder) if config.reminder is not None else None
        channels = build_channels(config, environ)
        policy = DeliveryPolicy(
            attempts=config.attempts,
            retry_delay=parse_duration(config.retry_delay).total_seconds(),
            limit=config.rate_limit.messages,
            period=parse_duration(config.rate_limit.period).total_seconds(),
            dashboard_url=config.dashboard_url,
            host=host,
            tick=tick,
        )
        self._states = load_states(self._state_path)
        self._workers = [ChannelWorker(c, policy, clock=clock, log=self._log) for c in channels]

    @property
    def channels(self) -> list[str]:
        return [worker.name for worker in self._workers]

    def observe(self, condition: Condition) -> None:
        """Tell the alerter how ``condition`` is now; never raises, never waits on delivery."""
        if self._config is None:
            return
        try:
            with self._lock:
                now = self._clock()
                decision = decide(self._states.get(condition.key), condition, now, self._reminder)
                self._states[condition.key] = decision.state
                if decision.changed:
                    self._save()
            if decision.event is not None:
                self._dispatch(condition_message(decision, condition, now, self._config.dashboard_url))
        except Exception as exc:  # noqa: BLE001 - alerting never breaks the job that reports
            self._log(f"alerts: cannot handle condition {condition.key!r}: {type(exc).__name__}")

    def drill_finished(self, result: DrillResult) -> None:
        """One message per drill, whatever its result; never raises."""
        if self._config is None:
            return
        try:
            self._dispatch(drill_message(result, self._clock(), self._config.dashboard_url))
        except Exception as exc:  # noqa: BLE001 - alerting never breaks the drill that reports
            self._log(f"alerts: cannot report the drill of {result.source!r}: {type(exc).__name__}")

    def close(self, timeout: float) -> None:
        """Deliver what is queued for at most ``timeout`` seconds in all, then stop. Every channel
        is told to stop first and all deliver at once: a channel that hangs takes no time from
        the others. The last part of the time (:data:`LEAVE_GRACE`) is for the channels still
        busy then to stop waiting to retry and leave."""
        timeout = max(0.0, timeout)
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.stop()
        busy_until = deadline - min(LEAVE_GRACE, timeout / 2)
        late = [worker for worker in self._workers if not worker.join(busy_until)]
        for worker in late:
            worker.abandon()
        for worker in late:
            worker.join(deadline)

    def states(self) -> dict[str, ConditionState]:
        with self._lock:
            return dict(self._states)

    def _dispatch(self, message: Message) -> None:
        if self._host is not None:
            message = replace(message, host=self._host)
        for worker in self._workers:
            worker.submit(message)

    def _save(self) -> None:
        if save_states(self._state_path, self._states):
            self._save_failed = False
        elif not self._save_failed:  # said once, not at every observation
            self._save_failed = True
            self._log(f"alerts: cannot write {self._state_path}: a restart may repeat or miss a message")


@dataclass(frozen=True)
class ChannelCheck:
    name: str
    kind: str
    error: str | None  # one line; None: delivered


def send_test_messages(
    config: AlertsConfig,
    environ: Mapping[str, str],
    *,
    only: str | None = None,
    host: str | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> list[ChannelCheck]:
    """Send a test message through each channel (or the one named ``only``), synchronously and
    once each; what happened to each. A channel that cannot be built is a ConfigError."""
    from lifeboat.app.observability.alerts.channels import build_channels

    checks: list[ChannelCheck] = []
    for configured in build_channels(config, environ, only):
        channel = configured.channel
        try:
            channel.send(replace(probe_message(clock(), config.dashboard_url, channel.name), host=host))
        except Exception as exc:  # noqa: BLE001 - every failure is reported per channel, as one line
            from lifeboat.app.observability.alerts.channel import DeliveryFailed

            reason = str(exc) if isinstance(exc, DeliveryFailed) else f"{type(exc).__name__} (not shown)"
            checks.append(ChannelCheck(channel.name, channel.kind, reason))
        else:
            checks.append(ChannelCheck(channel.name, channel.kind, None))
    return checks
