"""WAL archiving supervision: a continuous check, not a job.

Every ``daemon.archiving_check`` the daemon asks each postgres source's live cluster (the
health code: operations/health_pg.probe_source, judged by core/health.judge_archiver and
judge_ready) whether ``archive_command`` is failing and how many ``.ready`` files wait. The
verdict feeds alerts (condition ``archiving:<source>``) and metrics; it is logged only when
it changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lifeboat.core.health import Check, State, judge_archiver, judge_ready, worst


@dataclass(frozen=True)
class ArchivingState:
    """What the last check of one source found."""

    source: str
    state: State
    summary: str
    hint: str
    checked: datetime
    failed_total: float | None = None
    ready: float | None = None

    @property
    def healthy(self) -> bool:
        return self.state is State.OK


Probe = Callable[[Any], Any]  # a source's configuration -> operations.health_pg.ClusterProbe


def judge(source: str, probe: Any, now: datetime) -> ArchivingState:
    """The archiving state of ``source`` from its cluster ``probe``."""
    if not probe.reachable:
        return ArchivingState(source, State.UNKNOWN, f"cluster not reachable: {probe.error}",
                              "is the server running?", now)  # fmt: skip
    checks: list[Check] = []
    if probe.archiver is not None:
        checks.append(judge_archiver(source, probe.archiver, now))
    checks.append(judge_ready(source, probe.ready, probe.ready_how))
    state = worst(check.state for check in checks)
    bad = [check for check in checks if check.state is state and state is not State.OK]
    metrics: dict[str, float | None] = {}
    for check in checks:
        metrics.update(check.metrics)
    summary = "; ".join(check.summary for check in bad) or "archiving works"
    hint = "; ".join(check.hint for check in bad if check.hint)
    failed = metrics.get("failed_total")
    ready = probe.ready
    return ArchivingState(source, state, summary, hint, now, failed, float(ready) if ready is not None else None)


class ArchivingWatch:
    """Checks the postgres sources of the configuration and reports each change of state."""

    def __init__(
        self,
        sources: Mapping[str, Any],
        *,
        probe: Probe,
        clock: Callable[[], datetime],
        on_change: Callable[[ArchivingState, ArchivingState | None], None],
    ) -> None:
        self._probe = probe
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._states: dict[str, ArchivingState] = {}
        self._sources: dict[str, Any] = {}
        self.configure(sources)

    def configure(self, sources: Mapping[str, Any]) -> None:
        """Watch the postgres sources among ``sources`` (a reload)."""
        with self._lock:
            self._sources = {name: c for name, c in sources.items() if getattr(c, "type", None) == "postgres"}
            self._states = {name: s for name, s in self._states.items() if name in self._sources}

    @property
    def watched(self) -> bool:
        return bool(self._sources)

    def states(self) -> list[ArchivingState]:
        with self._lock:
            return list(self._states.values())

    def check(self) -> None:
        """Check every watched source once; never raises."""
        with self._lock:
            sources = dict(self._sources)
        for name, config in sources.items():
            now = self._clock()
            try:
                state = judge(name, self._probe(config), now)
            except Exception as exc:  # noqa: BLE001 - a check that cannot run is reported, not raised
                state = ArchivingState(name, State.UNKNOWN, f"the check failed: {type(exc).__name__}: {exc}", "", now)
            with self._lock:
                before = self._states.get(name)
                self._states[name] = state
            if before is None or before.state is not state.state:
                self._on_change(state, before)
